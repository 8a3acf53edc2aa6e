//! Replays: making finished deliveries due again with a fresh retry budget, one delivery, one
//! event (with the deliveries of routes it lacks) or every dead letter a filter matches.

use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension, Transaction};

use super::dedupe::seq_of_id;
use super::error::Failure;
use super::filters::{FilterSql, DEAD};
use super::millis::now_ms;
use crate::store::{replayable, EventFilter, NewDelivery, StoreError};

/// Replays one delivery, unless it is in flight or its event's body is gone.
pub(super) fn replay_delivery(tx: &Transaction<'_>, delivery_id: i64) -> Result<(), Failure> {
    let state: Option<String> = tx
        .query_row(
            "SELECT d.state FROM deliveries d JOIN events e ON e.seq = d.event_seq
             WHERE d.id = ?1 AND e.body IS NOT NULL",
            [delivery_id],
            |r| r.get(0),
        )
        .optional()?;
    replayable(delivery_id, state.as_deref())?;
    reset_deliveries(tx, "WHERE d.id = ?", &[Value::Integer(delivery_id)])?;
    Ok(())
}

/// Replays every finished delivery of an event and creates those of `routes` it lacks;
/// returns how many deliveries it made due.
pub(super) fn replay_event(
    tx: &Transaction<'_>,
    id: &str,
    routes: &[NewDelivery],
) -> Result<u64, Failure> {
    let Some(seq) = seq_of_id(tx, id)? else {
        return Err(StoreError::NotFound(format!("event {id}")).into());
    };
    let has_body: bool = tx.query_row(
        "SELECT body IS NOT NULL FROM events WHERE seq = ?1",
        [seq],
        |r| r.get(0),
    )?;
    if !has_body {
        return Err(StoreError::Conflict(format!(
            "event {id} is past its retention: its body is no longer stored"
        ))
        .into());
    }
    let now = now_ms();
    let mut stmt = tx.prepare_cached(
        "INSERT INTO deliveries (event_seq, route, handler, state, due_at, since)
         VALUES (?1, ?2, ?3, 'pending', ?4, ?4) ON CONFLICT (event_seq, route) DO NOTHING",
    )?;
    let mut created = 0u64;
    for route in routes {
        created += stmt.execute(params![seq, route.route, route.handler, now])? as u64;
    }
    let reset = reset_deliveries(
        tx,
        "WHERE d.event_seq = ? AND d.state <> 'pending'",
        &[Value::Integer(seq)],
    )?;
    Ok(created + reset)
}

/// Replays the dead letters that match `filter` and still have their event's body.
pub(super) fn replay_dead(tx: &Transaction<'_>, filter: &EventFilter) -> Result<u64, Failure> {
    let mut sql = FilterSql::new(filter, true)?;
    sql.and_deliveries(DEAD);
    sql.and("e.body IS NOT NULL");
    reset_deliveries(tx, &sql.where_sql(), &sql.params)
}

/// Makes deliveries matching `condition` due now with a fresh budget; returns how many. The
/// success of a delivered one moves from its row into `attempts` first, so that its history
/// keeps it and the next round can record its own.
fn reset_deliveries(
    tx: &Transaction<'_>,
    condition: &str,
    params: &[Value],
) -> Result<u64, Failure> {
    let now = now_ms();
    let chosen = format!(
        "state <> 'inflight' AND id IN (SELECT d.id FROM deliveries d JOIN events e ON e.seq = d.event_seq {condition})"
    );
    let params = rusqlite::params_from_iter(params.iter());
    tx.execute(
        &format!(
            "INSERT INTO attempts (delivery_id, started_at, duration_ms, outcome, http_status)
             SELECT id, success_started_at, success_duration_ms, 'delivered', success_http_status
             FROM deliveries
             WHERE success_started_at IS NOT NULL AND {chosen} ORDER BY id"
        ),
        params.clone(),
    )?;
    let changed = tx.execute(
        &format!(
            "UPDATE deliveries SET state = 'pending', due_at = {now}, since = {now}, attempts = 0,
                 lease_until = NULL, success_started_at = NULL, success_duration_ms = NULL,
                 success_http_status = NULL
             WHERE {chosen}"
        ),
        params,
    )?;
    Ok(changed as u64)
}
