//! Where attempts are kept: recording one and moving its delivery on, and reading a delivery's
//! history back in order. As in the SQLite store, a success is kept in its delivery's row and
//! a failure gets a row of `attempts` (see `store/sqlite/attempts.rs` for why).

use super::error::Failure;
use super::pool::Connection;
use super::writer::whole_millis;
use crate::store::{AttemptInfo, AttemptRecord, NextStep};

/// Records a success in the delivery's row.
const DELIVERED: &str = "
UPDATE deliveries SET state = 'delivered', due_at = now(), lease_until = NULL,
    last_error = NULL, success_started_at = $2, success_duration_ms = $3,
    success_http_status = $4
WHERE id = $1";

/// Records a failure in `attempts` and moves the delivery to `$5`, due at `$6` (now if null).
const FAILED: &str = "
WITH recorded AS (
    INSERT INTO attempts (delivery_id, started_at, duration_ms, outcome, http_status, error)
    VALUES ($1, $2, $3, $4, $7, $8)
)
UPDATE deliveries SET state = $5, due_at = coalesce($6, now()), lease_until = NULL,
    last_error = $8
WHERE id = $1";

/// Records an attempt and what comes next, in one statement.
pub(super) async fn finish(
    conn: &Connection,
    delivery_id: i64,
    attempt: &AttemptRecord,
    next: NextStep,
) -> Result<(), Failure> {
    let started_at = whole_millis(attempt.started_at);
    let duration_ms = attempt.duration.as_millis() as i64;
    let http_status = attempt.http_status.map(i32::from);
    let (state, outcome, due_at) = match next {
        NextStep::Delivered => {
            let statement = conn.prepare_cached(DELIVERED).await?;
            let done = [
                &delivery_id as _,
                &started_at as _,
                &duration_ms as _,
                &http_status as _,
            ];
            conn.execute(&statement, &done).await?;
            return Ok(());
        }
        NextStep::RetryAt(at) => ("pending", "retry", Some(whole_millis(at))),
        NextStep::Dead => ("dead", "dead", None),
    };
    let statement = conn.prepare_cached(FAILED).await?;
    conn.execute(
        &statement,
        &[
            &delivery_id,
            &started_at,
            &duration_ms,
            &outcome,
            &state,
            &due_at,
            &http_status,
            &attempt.error,
        ],
    )
    .await?;
    Ok(())
}

/// A delivery's attempts in order: its `attempts` rows, then the success kept in its own row,
/// which is always the last attempt of its round.
pub(super) async fn history(
    conn: &Connection,
    delivery_id: i64,
) -> Result<Vec<AttemptInfo>, Failure> {
    let statement = conn
        .prepare_cached(
            "SELECT started_at, duration_ms, outcome, http_status, error FROM (
                 SELECT false AS round_end, id, started_at, duration_ms, outcome, http_status,
                        error
                 FROM attempts WHERE delivery_id = $1
                 UNION ALL
                 SELECT true, id, success_started_at, success_duration_ms, 'delivered',
                        success_http_status, NULL
                 FROM deliveries WHERE id = $1 AND success_started_at IS NOT NULL
             ) history
             ORDER BY round_end, id",
        )
        .await?;
    let rows = conn.query(&statement, &[&delivery_id]).await?;
    rows.iter()
        .map(|row| {
            Ok(AttemptInfo {
                started_at: row.try_get(0)?,
                duration_ms: row.try_get::<_, i64>(1)?.max(0) as u64,
                outcome: row.try_get(2)?,
                http_status: row
                    .try_get::<_, Option<i32>>(3)?
                    .and_then(|s| u16::try_from(s).ok()),
                error: row.try_get(4)?,
            })
        })
        .collect()
}
