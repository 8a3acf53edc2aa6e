//! Where attempts are kept: recording one and moving its delivery on, and reading a delivery's
//! history back in order.
//!
//! A successful attempt, by far the most common one, is kept in the delivery's own row (the
//! `success_*` columns) rather than as a row of `attempts`: that spares every delivered event an
//! insert into two more B-trees (the table and its index), which were ~12 % of the writer's
//! `perf` samples. Failed attempts, which need their status and error, get their `attempts` row.
//! [`history`] reads both, and a replay moves a success into `attempts` before it starts a new
//! round (see [`super::replay`]).

use rusqlite::{params, Connection, Transaction};

use super::error::Failure;
use super::millis::{from_ms, now_ms};
use crate::store::{AttemptInfo, AttemptRecord, NextStep};

/// Records an attempt and what comes next.
pub(super) fn finish(
    tx: &Transaction<'_>,
    delivery_id: i64,
    attempt: &AttemptRecord,
    next: NextStep,
) -> Result<(), Failure> {
    let started_at = attempt.started_at.timestamp_millis();
    let duration_ms = attempt.duration.as_millis() as i64;
    let (state, outcome, due_at) = match next {
        NextStep::Delivered => {
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'delivered', due_at = ?1, lease_until = NULL,
                     last_error = NULL, success_started_at = ?2, success_duration_ms = ?3,
                     success_http_status = ?4
                 WHERE id = ?5",
            )?
            .execute(params![
                now_ms(),
                started_at,
                duration_ms,
                attempt.http_status,
                delivery_id
            ])?;
            return Ok(());
        }
        NextStep::RetryAt(at) => ("pending", "retry", at.timestamp_millis()),
        NextStep::Dead => ("dead", "dead", now_ms()),
    };
    tx.prepare_cached(
        "INSERT INTO attempts (delivery_id, started_at, duration_ms, outcome, http_status, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        delivery_id,
        started_at,
        duration_ms,
        outcome,
        attempt.http_status,
        attempt.error,
    ])?;
    tx.prepare_cached(
        "UPDATE deliveries SET state = ?1, due_at = ?2, lease_until = NULL, last_error = ?3
         WHERE id = ?4",
    )?
    .execute(params![state, due_at, attempt.error, delivery_id])?;
    Ok(())
}

/// A delivery's attempts in order: its `attempts` rows, then the success kept in its own row,
/// which is always the last attempt of its round.
pub(super) fn history(conn: &Connection, delivery_id: i64) -> Result<Vec<AttemptInfo>, Failure> {
    let mut stmt = conn.prepare_cached(
        "SELECT started_at, duration_ms, outcome, http_status, error FROM (
             SELECT 0 AS round_end, id, started_at, duration_ms, outcome, http_status, error
             FROM attempts WHERE delivery_id = ?1
             UNION ALL
             SELECT 1, 0, success_started_at, success_duration_ms, 'delivered', success_http_status, NULL
             FROM deliveries WHERE id = ?1 AND success_started_at IS NOT NULL)
         ORDER BY round_end, id",
    )?;
    let rows = stmt.query_map([delivery_id], |row| {
        Ok(AttemptInfo {
            started_at: from_ms(row.get(0)?),
            duration_ms: row.get::<_, i64>(1)?.max(0) as u64,
            outcome: row.get(2)?,
            http_status: row.get(3)?,
            error: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
