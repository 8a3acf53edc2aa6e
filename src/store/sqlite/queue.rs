//! The work queue: which deliveries are due, claiming them for a handler's worker, putting
//! leased ones back, and making a handler's retries due now.

use std::time::Duration;

use rusqlite::{params, Transaction};

use super::error::Failure;
use super::millis::{from_ms, now_ms};
use super::rows::{stored_from_row, EVENT_COLUMNS};
use super::schema::{earlier_open, open_delivery};
use crate::store::Claimed;

/// Due deliveries of a handler, oldest first: what a claim takes. One of an ordered route is
/// due only when it heads its key (see [`crate::store::order`]); those [held back](super::order)
/// behind their key's head are outside the range of `deliveries_open` it reads.
pub(super) const SELECT_DUE: &str = concat!(
    "SELECT id FROM deliveries d
     WHERE state = 'pending' AND handler = ?1 AND held = 0 AND due_at <= ?2 AND ",
    open_delivery!(),
    " AND (d.order_key IS NULL OR NOT EXISTS (",
    earlier_open!(),
    ")) ORDER BY due_at LIMIT ?3"
);
/// Hands deliveries whose lease ended before `?1` back to the queue.
pub(super) const RELEASE_LEASES: &str = concat!(
    "UPDATE deliveries SET state = 'pending', lease_until = NULL
     WHERE state = 'inflight' AND lease_until < ?1 AND ",
    open_delivery!()
);
/// Makes a handler's retries due now (`?1`).
pub(super) const EXPEDITE: &str = concat!(
    "UPDATE deliveries SET due_at = ?1 WHERE state = 'pending' AND handler = ?2 AND due_at > ?1 AND ",
    open_delivery!()
);

/// Claims up to `limit` due deliveries of `handler`: picks them, marks each in flight, reads
/// each with its event. Every statement is cached and touches one row at a time, so a claim
/// neither re-prepares SQL nor needs a statement journal.
pub(super) fn claim_due(
    tx: &Transaction<'_>,
    handler: &str,
    limit: usize,
    lease: Duration,
) -> Result<Vec<Claimed>, Failure> {
    let now = now_ms();
    let lease_until = now + lease.as_millis() as i64;
    let ids: Vec<i64> = tx
        .prepare_cached(SELECT_DUE)?
        .query_map(params![handler, now, limit as i64], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut mark = tx.prepare_cached(
        "UPDATE deliveries SET state = 'inflight', lease_until = ?1, attempts = attempts + 1
         WHERE id = ?2",
    )?;
    let mut read = tx.prepare_cached(&format!(
        "SELECT d.id, d.route, d.attempts, d.since, d.order_key IS NOT NULL, {EVENT_COLUMNS}
         FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = ?1"
    ))?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        mark.execute(params![lease_until, id])?;
        claimed.push(read.query_row([id], |row| {
            Ok(Claimed {
                delivery_id: row.get(0)?,
                route: row.get(1)?,
                attempt: row.get(2)?,
                since: from_ms(row.get(3)?),
                ordered: row.get(4)?,
                event: stored_from_row(row, 5)?,
            })
        })?);
    }
    Ok(claimed)
}

/// Puts in-flight deliveries whose lease ends before `before` back in the queue.
pub(super) fn release_leases(tx: &Transaction<'_>, before: i64) -> Result<u64, Failure> {
    let n = tx.execute(RELEASE_LEASES, [before])?;
    Ok(n as u64)
}

/// Makes the pending deliveries of `handler` that wait for a later time due now.
pub(super) fn expedite(tx: &Transaction<'_>, handler: &str) -> Result<u64, Failure> {
    let now = now_ms();
    let n = tx
        .prepare_cached(EXPEDITE)?
        .execute(params![now, handler])?;
    Ok(n as u64)
}
