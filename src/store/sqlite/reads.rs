//! The read-only queries, run on the [`super::reader::Reader`] connection: the inspector's
//! listings and event detail, and the delivery counts of metrics and readiness.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::attempts;
use super::dedupe::seq_of_id;
use super::error::Failure;
use super::filters::{select_filtered, FilterSql, DEAD};
use super::millis::from_ms;
use super::rows::{delivery_from_row, summary_from_row, summary_select, DELIVERY_SELECT};
use super::schema::open_delivery;
use crate::store::{DeliveryCounts, DeliveryInfo, EventDetail, EventFilter, EventSummary};

/// Open deliveries per state.
pub(super) const COUNT_OPEN: &str = concat!(
    "SELECT state, COUNT(*) FROM deliveries WHERE ",
    open_delivery!(),
    " GROUP BY state"
);

/// The creation (or last replay) of the oldest delivery still waiting to be done. The first
/// condition is the partial index's, so that only open deliveries are read.
pub(super) const OLDEST_WAITING: &str = concat!(
    "SELECT MIN(since) FROM deliveries WHERE ",
    open_delivery!(),
    " AND state IN ('pending', 'inflight')"
);

/// Events matching `filter`, newest first.
pub(super) fn list_events(
    conn: &Connection,
    filter: &EventFilter,
) -> Result<Vec<EventSummary>, Failure> {
    let sql = FilterSql::new(filter, false)?;
    select_filtered(
        conn,
        &summary_select(),
        &sql,
        "e.seq",
        filter,
        summary_from_row,
    )
}

/// Dead letters matching `filter`, newest first.
pub(super) fn dead_letters(
    conn: &Connection,
    filter: &EventFilter,
) -> Result<Vec<DeliveryInfo>, Failure> {
    let mut sql = FilterSql::new(filter, true)?;
    sql.and(DEAD);
    select_filtered(
        conn,
        DELIVERY_SELECT,
        &sql,
        "d.id",
        filter,
        delivery_from_row,
    )
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
