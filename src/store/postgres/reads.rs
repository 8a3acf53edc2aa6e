//! The read-only queries: the inspector's listings and event detail, and the delivery counts of
//! metrics and readiness. They see the whole inbox, whichever replica committed what.

use chrono::{DateTime, Utc};

use super::attempts;
use super::error::Failure;
use super::filters::FilterSql;
use super::pool::Connection;
use super::rows::{delivery_from_row, summary_from_row, summary_select, DELIVERY_SELECT};
use crate::store::{
    Backlog, DeadLetterGroups, DeliveryCounts, DeliveryInfo, EventDetail, EventFilter,
    EventSummary, EventType, GroupCount, MinuteCount, MAX_ERROR_GROUPS,
};

/// Events matching `filter`, newest first.
pub(super) async fn list_events(
    conn: &Connection,
    filter: &EventFilter,
) -> Result<Vec<EventSummary>, Failure> {
    let sql = FilterSql::new(filter, false)?;
    let select = summary_select(&sql.where_sql());
    let rows = sql.select(conn, &select, "e.seq", filter).await?;
    Ok(rows
        .iter()
        .map(summary_from_row)
        .collect::<Result<_, _>>()?)
}

/// Dead letters matching `filter`, newest first.
pub(super) async fn dead_letters(
    conn: &Connection,
    filter: &EventFilter,
) -> Result<Vec<DeliveryInfo>, Failure> {
    let mut sql = FilterSql::new(filter, true)?;
    sql.and("d.state = 'dead'");
    let select = format!("{DELIVERY_SELECT} {}", sql.where_sql());
    let rows = sql.select(conn, &select, "d.id", filter).await?;
    Ok(rows
        .iter()
        .map(delivery_from_row)
        .collect::<Result<_, _>>()?)
}

/// One event with its body, its deliveries and their attempts.
pub(super) async fn event(conn: &Connection, id: &str) -> Result<Option<EventDetail>, Failure> {
    let found = conn
        .query_opt(&summary_select("WHERE e.id = $1"), &[&id])
        .await?;
    let Some(row) = found else {
        return Ok(None);
    };
    let summary = summary_from_row(&row)?;
    let body: Option<Vec<u8>> = conn
        .query_one("SELECT body FROM events WHERE seq = $1", &[&summary.seq])
        .await?
        .try_get(0)?;
    let select = format!("{DELIVERY_SELECT} WHERE d.event_seq = $1 ORDER BY d.id");
    let mut deliveries = conn
        .query(&select, &[&summary.seq])
        .await?
        .iter()
        .map(delivery_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    for delivery in &mut deliveries {
        delivery.history = attempts::history(conn, delivery.id).await?;
    }
    Ok(Some(EventDetail {
        summary,
        body: body.map(|b| String::from_utf8_lossy(&b).into_owned()),
        deliveries,
    }))
}

/// Deliveries that are pending, in flight or dead, each counted on its partial index.
pub(super) async fn counts(conn: &Connection) -> Result<DeliveryCounts, Failure> {
    let statement = conn
        .prepare_cached(
            "SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending'),
                    (SELECT count(*) FROM deliveries WHERE state = 'inflight'),
                    (SELECT count(*) FROM deliveries WHERE state = 'dead')",
        )
        .await?;
    let row = conn.query_one(&statement, &[]).await?;
    let count = |n: usize| -> Result<u64, Failure> { Ok(row.try_get::<_, i64>(n)?.max(0) as u64) };
    Ok(DeliveryCounts {
        pending: count(0)?,
        inflight: count(1)?,
        dead: count(2)?,
    })
}

/// When the oldest delivery still waiting to be done (pending or in flight) was created or
/// last replayed. Each state is read through its partial index of open work, so that the
/// delivered rows, nearly all of them, are never visited.
pub(super) async fn oldest_waiting(conn: &Connection) -> Result<Option<DateTime<Utc>>, Failure> {
    let statement = conn
        .prepare_cached(
            "SELECT least((SELECT min(since) FROM deliveries WHERE state = 'pending'),
                          (SELECT min(since) FROM deliveries WHERE state = 'inflight'))",
        )
        .await?;
    Ok(conn.query_one(&statement, &[]).await?.try_get(0)?)
}

/// The activity counts of the minutes from `since` on, oldest first, the shards of each minute
/// added up.
pub(super) async fn activity(
    conn: &Connection,
    since: DateTime<Utc>,
) -> Result<Vec<MinuteCount>, Failure> {
    let statement = conn
        .prepare_cached(
            "SELECT minute, source, event_type, sum(events)::int8, sum(undecodable)::int8
             FROM event_minutes WHERE minute >= $1
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        )
        .await?;
    let rows = conn.query(&statement, &[&since]).await?;
    let count = |n: i64| n.max(0) as u64;
    rows.iter()
        .map(|r| {
            Ok(MinuteCount {
                minute: r.try_get(0)?,
                source: r.try_get(1)?,
                event_type: r.try_get(2)?,
                events: count(r.try_get(3)?),
                undecodable: count(r.try_get(4)?),
            })
        })
        .collect()
}

/// Every source and type among the activity counts.
pub(super) async fn event_types(conn: &Connection) -> Result<Vec<EventType>, Failure> {
    let statement = conn
        .prepare_cached(
            "SELECT DISTINCT source, event_type FROM event_minutes ORDER BY source, event_type",
        )
        .await?;
    let rows = conn.query(&statement, &[]).await?;
    rows.iter()
        .map(|r| {
            Ok(EventType {
                source: r.try_get(0)?,
                event_type: r.try_get(1)?,
            })
        })
        .collect()
}

/// The open work, read from the partial indexes of open deliveries.
pub(super) async fn backlog(conn: &Connection) -> Result<Backlog, Failure> {
    let statement = conn
        .prepare_cached(
            "SELECT (SELECT count(DISTINCT event_seq) FROM deliveries
                     WHERE state IN ('pending', 'inflight')),
                    (SELECT count(DISTINCT event_seq) FROM deliveries WHERE state = 'dead')",
        )
        .await?;
    let row = conn.query_one(&statement, &[]).await?;
    let count = |n: usize| -> Result<u64, Failure> { Ok(row.try_get::<_, i64>(n)?.max(0) as u64) };
    Ok(Backlog {
        deliveries: counts(conn).await?,
        events_pending: count(0)?,
        events_dead: count(1)?,
        oldest_waiting_since: oldest_waiting(conn).await?,
    })
}

/// The dead letters matching `filter`, counted by route and by error (the largest
/// [`MAX_ERROR_GROUPS`] of those).
pub(super) async fn dead_letter_groups(
    conn: &Connection,
    filter: &EventFilter,
) -> Result<DeadLetterGroups, Failure> {
    let mut sql = FilterSql::new(filter, true)?;
    sql.and("d.state = 'dead'");
    let group = async |column: &str, limit: &str| -> Result<Vec<GroupCount>, Failure> {
        let query = format!(
            "SELECT {column}, count(*) FROM deliveries d JOIN events e ON e.seq = d.event_seq
             {} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {limit}",
            sql.where_sql()
        );
        let rows = conn.query(&query, &sql.params()).await?;
        rows.iter()
            .map(|r| {
                Ok(GroupCount {
                    key: r.try_get(0)?,
                    count: r.try_get::<_, i64>(1)?.max(0) as u64,
                })
            })
            .collect()
    };
    let by_route = group("d.route", "ALL").await?;
    Ok(DeadLetterGroups {
        total: by_route.iter().map(|g| g.count).sum(),
        by_route,
        by_error: group("d.last_error", &MAX_ERROR_GROUPS.to_string()).await?,
    })
}
