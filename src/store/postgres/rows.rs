//! The columns the store's reads select, and how a row becomes one of the store's types.

use bytes::Bytes;
use tokio_postgres::Row;

use crate::store::{DeliveryInfo, EventSummary, StoredEvent};

/// The columns [`stored_from_row`] reads, in order, over `events e`.
pub(super) const EVENT_COLUMNS: &str =
    "e.source, e.endpoint, e.provider_id, e.event_type, e.received_at, e.decode_error, e.body";

/// Reads an event selected with [`EVENT_COLUMNS`] at `offset`.
pub(super) fn stored_from_row(
    row: &Row,
    offset: usize,
) -> Result<StoredEvent, tokio_postgres::Error> {
    let body: Option<Vec<u8>> = row.try_get(offset + 6)?;
    Ok(StoredEvent {
        source: row.try_get(offset)?,
        endpoint: row.try_get(offset + 1)?,
        provider_id: row.try_get(offset + 2)?,
        event_type: row.try_get(offset + 3)?,
        received_at: row.try_get(offset + 4)?,
        decode_error: row.try_get(offset + 5)?,
        body: Bytes::from(body.unwrap_or_default()),
    })
}

/// An event's status, derived from its deliveries: `dead` if any is dead, else `pending` if any
/// is pending or in flight, else `delivered`, and `unrouted` without any.
const STATUS: &str = "CASE
    WHEN bool_or(d.state = 'dead') THEN 'dead'
    WHEN bool_or(d.state IN ('pending', 'inflight')) THEN 'pending'
    WHEN count(d.id) > 0 THEN 'delivered'
    ELSE 'unrouted' END";

/// The query whose rows [`summary_from_row`] reads, over `events e`, narrowed by `filter` (a
/// `WHERE` clause or nothing).
pub(super) fn summary_select(filter: &str) -> String {
    format!(
        "SELECT e.seq, e.id, e.source, e.endpoint, e.provider_id, e.event_type, e.received_at,
                e.decode_error,
                (SELECT {STATUS} FROM deliveries d WHERE d.event_seq = e.seq)
         FROM events e {filter}"
    )
}

/// Reads a row of [`summary_select`].
pub(super) fn summary_from_row(row: &Row) -> Result<EventSummary, tokio_postgres::Error> {
    Ok(EventSummary {
        seq: row.try_get(0)?,
        id: row.try_get(1)?,
        source: row.try_get(2)?,
        endpoint: row.try_get(3)?,
        provider_id: row.try_get(4)?,
        event_type: row.try_get(5)?,
        received_at: row.try_get(6)?,
        decode_error: row.try_get(7)?,
        status: row.try_get(8)?,
    })
}

/// The query whose rows [`delivery_from_row`] reads, over `deliveries d` and `events e`.
pub(super) const DELIVERY_SELECT: &str =
    "SELECT d.id, e.id, d.route, d.handler, d.state, d.attempts, d.due_at, d.last_error
     FROM deliveries d JOIN events e ON e.seq = d.event_seq";

/// Reads a row of [`DELIVERY_SELECT`], without its history.
pub(super) fn delivery_from_row(row: &Row) -> Result<DeliveryInfo, tokio_postgres::Error> {
    Ok(DeliveryInfo {
        id: row.try_get(0)?,
        event_id: row.try_get(1)?,
        route: row.try_get(2)?,
        handler: row.try_get(3)?,
        state: row.try_get(4)?,
        attempts: row.try_get::<_, i32>(5)?.max(0) as u32,
        due_at: row.try_get(6)?,
        last_error: row.try_get(7)?,
        history: Vec::new(),
    })
}
