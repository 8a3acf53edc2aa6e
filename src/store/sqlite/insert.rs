//! Committing an event with its deliveries, or recognising it as a duplicate.

use bytes::Bytes;
use rusqlite::{params, Transaction};

use super::dedupe::{id_hash, EventIds};
use super::error::Failure;
use super::millis::now_ms;
use super::order::held_back;
use crate::envelope::Envelope;
use crate::store::{DeliveryStart, InsertOutcome, NewDelivery};

/// What intake writes for one event: the envelope's columns, owned so that the job can move to
/// the writer thread without cloning the decoded event.
pub(super) struct EventRow {
    id: String,
    /// The id's hash, as the dedupe tables keep it (computed here, off the writer thread).
    id_hash: i64,
    source: &'static str,
    endpoint: String,
    provider_id: String,
    event_type: String,
    received_at: i64,
    decode_error: Option<String>,
    body: Bytes,
    /// The contact and conversation ids the event is about, for the inspector's lookup.
    contact_id: Option<String>,
    conversation_id: Option<String>,
}

impl From<&Envelope> for EventRow {
    fn from(envelope: &Envelope) -> Self {
        let keys = envelope.key_ids();
        EventRow {
            id: envelope.id.clone(),
            id_hash: id_hash(&envelope.id),
            source: envelope.source.as_str(),
            endpoint: envelope.endpoint.clone(),
            provider_id: envelope.provider_id.clone(),
            event_type: envelope.event_type.clone(),
            received_at: envelope.received_at.timestamp_millis(),
            decode_error: envelope.decode_error.clone(),
            body: envelope.body.clone(),
            contact_id: keys.contact,
            conversation_id: keys.conversation,
        }
    }
}

/// Writes the event and its deliveries, unless its id is stored already. No `RETURNING` here:
/// it would make SQLite keep a statement journal (a copy of every page the statement touches)
/// for each insert; the row ids come from `last_insert_rowid` instead.
pub(super) fn insert_event(
    tx: &Transaction<'_>,
    ids: &mut EventIds,
    envelope: &EventRow,
    deliveries: &[NewDelivery],
) -> Result<InsertOutcome, Failure> {
    let hash = envelope.id_hash;
    if ids.seen(tx, hash, &envelope.id)? {
        return Ok(InsertOutcome::Duplicate);
    }
    tx.prepare_cached(
        "INSERT INTO events (id, source, endpoint, provider_id, event_type, received_at, decode_error, body,
             contact_id, conversation_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
            envelope.id,
            envelope.source,
            envelope.endpoint,
            envelope.provider_id,
            envelope.event_type,
            envelope.received_at,
            envelope.decode_error,
        envelope.body.as_ref(),
        envelope.contact_id,
        envelope.conversation_id,
    ])?;
    let seq = tx.last_insert_rowid();
    ids.add(tx, hash, seq)?;
    count_minute(tx, envelope)?;
    let now = now_ms();
    let mut stmt = tx.prepare_cached(
        "INSERT INTO deliveries (event_seq, route, handler, state, attempts, due_at, lease_until, since,
             success_started_at, success_duration_ms, order_key, order_blocks, held)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let mut delivery_ids = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        // A delivery handed over directly starts as its first attempt, exactly as a claim would;
        // one done at intake is written as finished by that attempt, exactly as its record would.
        let (state, attempts, lease_until, success) = match delivery.start {
            DeliveryStart::Pending => ("pending", 0, None, None),
            DeliveryStart::Claimed(lease) => {
                ("inflight", 1, Some(now + lease.as_millis() as i64), None)
            }
            DeliveryStart::Delivered(success) => ("delivered", 1, None, Some(success)),
        };
        let held = match &delivery.order {
            Some(order) if state == "pending" => held_back(tx, &delivery.route, &order.key)?,
            _ => false,
        };
        stmt.execute(params![
            seq,
            delivery.route,
            delivery.handler,
            state,
            attempts,
            now,
            lease_until,
            success.map(|s| s.started_at.timestamp_millis()),
            success.map(|s| s.duration.as_millis() as i64),
            delivery.order.as_ref().map(|o| o.key.as_str()),
            delivery.order.as_ref().is_some_and(|o| o.blocks),
            held,
        ])?;
        delivery_ids.push(tx.last_insert_rowid());
    }
    Ok(InsertOutcome::Stored { delivery_ids })
}

/// Counts the event in its minute of `event_minutes` (see `schema::INSPECTOR`).
fn count_minute(tx: &Transaction<'_>, event: &EventRow) -> Result<(), Failure> {
    tx.prepare_cached(
        "INSERT INTO event_minutes (minute, source, event_type, events, undecodable)
         VALUES (?1, ?2, ?3, 1, ?4)
         ON CONFLICT DO UPDATE SET events = events + 1, undecodable = undecodable + excluded.undecodable",
    )?
    .execute(params![
        event.received_at - event.received_at.rem_euclid(60_000),
        event.source,
        event.event_type,
        i64::from(event.decode_error.is_some()),
    ])?;
    Ok(())
}
