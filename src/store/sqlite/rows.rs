//! The columns the store's reads select, and how a row becomes one of the store's types.

use bytes::Bytes;

use super::millis::from_ms;
use crate::store::{DeliveryInfo, EventSummary, StoredEvent};

/// The columns [`stored_from_row`] reads, in order.
pub(super) const EVENT_COLUMNS: &str =
    "e.source, e.endpoint, e.provider_id, e.event_type, e.received_at, e.decode_error, e.body";

/// Reads an event selected with [`EVENT_COLUMNS`] at `offset`.
pub(super) fn stored_from_row(
    row: &rusqlite::Row<'_>,
    offset: usize,
) -> rusqlite::Result<StoredEvent> {
    let body: Option<Vec<u8>> = row.get(offset + 6)?;
    Ok(StoredEvent {
        source: row.get(offset)?,
        endpoint: row.get(offset + 1)?,
        provider_id: row.get(offset + 2)?,
        event_type: row.get(offset + 3)?,
        received_at: from_ms(row.get(offset + 4)?),
        decode_error: row.get(offset + 5)?,
        body: Bytes::from(body.unwrap_or_default()),
    })
}

/// The SQL expression of an event's status, derived from its deliveries.
const STATUS_SQL: &str = "CASE
    WHEN EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq AND x.state = 'dead') THEN 'dead'
    WHEN EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq AND x.state IN ('pending', 'inflight')) THEN 'pending'
    WHEN EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq) THEN 'delivered'
    ELSE 'unrouted' END";

/// The query whose rows [`summary_from_row`] reads, over `events e`.
pub(super) fn summary_select() -> String {
    format!(
        "SELECT e.seq, e.id, e.source, e.endpoint, e.provider_id, e.event_type, e.received_at, e.decode_error, {STATUS_SQL} FROM events e"
    )
}

/// Reads a row of [`summary_select`].
pub(super) fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventSummary> {
    Ok(EventSummary {
        seq: row.get(0)?,
        id: row.get(1)?,
        source: row.get(2)?,
        endpoint: row.get(3)?,
        provider_id: row.get(4)?,
        event_type: row.get(5)?,
        received_at: from_ms(row.get(6)?),
        decode_error: row.get(7)?,
        status: row.get(8)?,
    })
}

/// The query whose rows [`delivery_from_row`] reads, over `deliveries d` and `events e`.
pub(super) const DELIVERY_SELECT: &str =
    "SELECT d.id, e.id, d.route, d.handler, d.state, d.attempts, d.due_at, d.last_error
     FROM deliveries d JOIN events e ON e.seq = d.event_seq";

/// Reads a row of [`DELIVERY_SELECT`], without its history.
pub(super) fn delivery_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryInfo> {
    Ok(DeliveryInfo {
        id: row.get(0)?,
        event_id: row.get(1)?,
        route: row.get(2)?,
        handler: row.get(3)?,
        state: row.get(4)?,
        attempts: row.get(5)?,
        due_at: from_ms(row.get(6)?),
        last_error: row.get(7)?,
        history: Vec::new(),
    })
}
