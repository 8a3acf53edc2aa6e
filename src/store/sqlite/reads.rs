//! The read-only queries, run on the [`super::reader::Reader`] connection: the inspector's
//! listings, event detail and overview, and the delivery counts of metrics and readiness.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::attempts;
use super::dedupe::seq_of_id;
use super::error::Failure;
use super::filters::{select_filtered, FilterSql, DEAD};
use super::millis::from_ms;
use super::rows::{delivery_from_row, summary_from_row, summary_select, DELIVERY_SELECT};
use super::schema::open_delivery;
use crate::store::{
    Backlog, DeadLetterGroups, DeliveryCounts, DeliveryInfo, EventDetail, EventFilter,
    EventSummary, EventType, GroupCount, MinuteCount, MAX_ERROR_GROUPS,
};

/// Open deliveries per state.
pub(super) const COUNT_OPEN: &str = concat!(
    "SELECT state, COUNT(*) FROM deliveries WHERE ",
    open_delivery!(),
    " GROUP BY state"
);

/// Open deliveries that are waiting: pending or in flight. The open-delivery condition is the
/// partial index's, so that only open deliveries are read.
macro_rules! waiting {
    () => {
        concat!("state IN ('pending', 'inflight') AND ", open_delivery!())
    };
}
const WAITING: &str = waiting!();

/// The creation (or last replay) of the oldest delivery still waiting to be done.
pub(super) const OLDEST_WAITING: &str =
    concat!("SELECT MIN(since) FROM deliveries WHERE ", waiting!());

/// Events matching `filter`, newest first: first the page's `seq`s, which the filter finds in
/// an index where it can (a time range in `events_received`, a status in the open deliveries,
/// a contact in its own), then each one's summary, whose status costs a few lookups per row.
pub(super) fn list_events(
    conn: &Connection,
    filter: &EventFilter,
) -> Result<Vec<EventSummary>, Failure> {
    let sql = FilterSql::new(filter, false)?;
    let seqs: Vec<i64> = select_filtered(
        conn,
        "SELECT e.seq FROM events e",
        &sql,
        "e.seq",
        filter,
        |row| row.get(0),
    )?;
    let mut summary = conn.prepare_cached(&format!("{} WHERE e.seq = ?1", summary_select()))?;
    let events = seqs
        .iter()
        .map(|seq| summary.query_row([seq], summary_from_row))
        .collect::<Result<_, _>>()?;
    Ok(events)
}

/// Dead letters matching `filter`, newest first: their ids first, from the partial index of
/// open deliveries, then each one's row.
pub(super) fn dead_letters(
    conn: &Connection,
    filter: &EventFilter,
) -> Result<Vec<DeliveryInfo>, Failure> {
    let mut sql = FilterSql::new(filter, true)?;
    sql.and_deliveries(DEAD);
    let select = format!("SELECT d.id FROM {}", sql.deliveries_from());
    let ids: Vec<i64> = select_filtered(conn, &select, &sql, "d.id", filter, |row| row.get(0))?;
    let mut delivery = conn.prepare_cached(&format!("{DELIVERY_SELECT} WHERE d.id = ?1"))?;
    let letters = ids
        .iter()
        .map(|id| delivery.query_row([id], delivery_from_row))
        .collect::<Result<_, _>>()?;
    Ok(letters)
}

/// One event with its body, its deliveries and their attempts.
pub(super) fn event(conn: &Connection, id: &str) -> Result<Option<EventDetail>, Failure> {
    let Some(seq) = seq_of_id(conn, id)? else {
        return Ok(None);
    };
    let found = conn
        .prepare_cached(&format!("{} WHERE e.seq = ?1", summary_select()))?
        .query_row([seq], summary_from_row)
        .optional()?;
    let Some(summary) = found else {
        return Ok(None);
    };
    let body: Option<Vec<u8>> = conn.query_row(
        "SELECT body FROM events WHERE seq = ?1",
        [summary.seq],
        |r| r.get(0),
    )?;
    let mut deliveries: Vec<DeliveryInfo> = conn
        .prepare_cached(&format!(
            "{DELIVERY_SELECT} WHERE d.event_seq = ?1 ORDER BY d.id"
        ))?
        .query_map([summary.seq], delivery_from_row)?
        .collect::<Result<_, _>>()?;
    for delivery in &mut deliveries {
        delivery.history = attempts::history(conn, delivery.id)?;
    }
    Ok(Some(EventDetail {
        summary,
        body: body.map(|b| String::from_utf8_lossy(&b).into_owned()),
        deliveries,
    }))
}

/// Deliveries that are pending, in flight or dead.
pub(super) fn counts(conn: &Connection) -> Result<DeliveryCounts, Failure> {
    let mut counts = DeliveryCounts::default();
    let mut stmt = conn.prepare_cached(COUNT_OPEN)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (state, n) = row?;
        let n = n.max(0) as u64;
        match state.as_str() {
            "pending" => counts.pending = n,
            "inflight" => counts.inflight = n,
            _ => counts.dead = n,
        }
    }
    Ok(counts)
}

/// See [`OLDEST_WAITING`].
pub(super) fn oldest_waiting(conn: &Connection) -> Result<Option<DateTime<Utc>>, Failure> {
    let since: Option<i64> = conn
        .prepare_cached(OLDEST_WAITING)?
        .query_row([], |r| r.get(0))?;
    Ok(since.map(from_ms))
}

/// The database file's size as SQLite counts it toward `max_page_count`: pages × page size.
pub(super) fn size(conn: &Connection) -> Result<u64, Failure> {
    let bytes: i64 = conn.query_row(
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        [],
        |r| r.get(0),
    )?;
    Ok(bytes.max(0) as u64)
}

/// The activity counts of the minutes from `since` (epoch milliseconds) on, oldest first.
pub(super) fn activity(conn: &Connection, since: i64) -> Result<Vec<MinuteCount>, Failure> {
    let rows = conn
        .prepare_cached(
            "SELECT minute, source, event_type, events, undecodable FROM event_minutes
             WHERE minute >= ?1 ORDER BY minute, source, event_type",
        )?
        .query_map([since], |r| {
            Ok(MinuteCount {
                minute: from_ms(r.get(0)?),
                source: r.get(1)?,
                event_type: r.get(2)?,
                events: r.get::<_, i64>(3)?.max(0) as u64,
                undecodable: r.get::<_, i64>(4)?.max(0) as u64,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Every source and type among the activity counts.
pub(super) fn event_types(conn: &Connection) -> Result<Vec<EventType>, Failure> {
    let rows = conn
        .prepare_cached(
            "SELECT DISTINCT source, event_type FROM event_minutes ORDER BY source, event_type",
        )?
        .query_map([], |r| {
            Ok(EventType {
                source: r.get(0)?,
                event_type: r.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The open work, read from the partial index of open deliveries.
pub(super) fn backlog(conn: &Connection) -> Result<Backlog, Failure> {
    let count = |sql: &str| -> Result<u64, Failure> {
        let n: i64 = conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    };
    Ok(Backlog {
        deliveries: counts(conn)?,
        events_pending: count(&format!(
            "SELECT COUNT(DISTINCT event_seq) FROM deliveries WHERE {WAITING}"
        ))?,
        events_dead: count(concat!(
            "SELECT COUNT(DISTINCT event_seq) FROM deliveries WHERE state = 'dead' AND ",
            open_delivery!()
        ))?,
        oldest_waiting_since: oldest_waiting(conn)?,
    })
}

/// The dead letters matching `filter`, counted by route and by error.
pub(super) fn dead_letter_groups(
    conn: &Connection,
    filter: &EventFilter,
) -> Result<DeadLetterGroups, Failure> {
    let mut sql = FilterSql::new(filter, true)?;
    sql.and_deliveries(DEAD);
    let from = sql.deliveries_from();
    // A negative limit is none.
    let group = |column: &str, limit: i64| -> Result<Vec<GroupCount>, Failure> {
        let query = format!(
            "SELECT {column}, COUNT(*) FROM {from} {} GROUP BY {column} ORDER BY 2 DESC, 1 LIMIT {limit}",
            sql.where_sql()
        );
        let rows = conn
            .prepare(&query)?
            .query_map(rusqlite::params_from_iter(sql.params.iter()), |r| {
                Ok(GroupCount {
                    key: r.get(0)?,
                    count: r.get::<_, i64>(1)?.max(0) as u64,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    };
    let by_route = group("d.route", -1)?;
    Ok(DeadLetterGroups {
        total: by_route.iter().map(|g| g.count).sum(),
        by_route,
        by_error: group("d.last_error", MAX_ERROR_GROUPS as i64)?,
    })
}
