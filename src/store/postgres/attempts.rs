//! Where attempts are kept: recording one and moving its delivery on, and reading a delivery's
//! history back in order. As in the SQLite store, a success is kept in its delivery's row and
//! a failure gets a row of `attempts` (see `store/sqlite/attempts.rs` for why).

use deadpool_postgres::GenericClient;

use super::error::Failure;
use super::order;
use super::pool::Connection;
use super::writer::whole_millis;
use crate::store::{AttemptInfo, AttemptRecord, NextStep};

/// Records a success in the delivery's row: unless `$5`, only for a delivery that holds no key.
const DELIVERED: &str = "
UPDATE deliveries SET state = 'delivered', due_at = now(), lease_until = NULL,
    last_error = NULL, success_started_at = $2, success_duration_ms = $3,
    success_http_status = $4
WHERE id = $1 AND ($5 OR order_key IS NULL)";

/// Moves the delivery to `$5`, due at `$6` (now if null), and records the failure in
/// `attempts`: unless `$9`, only for a delivery whose move cannot let the next of its key go
/// (it holds no key, waits for a retry, or dies blocking its key).
const FAILED: &str = "
WITH moved AS (
    UPDATE deliveries SET state = $5, due_at = coalesce($6, now()), lease_until = NULL,
        last_error = $8
    WHERE id = $1 AND ($9 OR order_key IS NULL OR $5 = 'pending' OR order_blocks)
    RETURNING id
)
INSERT INTO attempts (delivery_id, started_at, duration_ms, outcome, http_status, error)
SELECT id, $2, $3, $4, $7, $8 FROM moved";

/// Records an attempt and what comes next. Nearly always one statement; when the delivery
/// holds a key and is done or dies without blocking it, a transaction that holds the key's
/// lock records it and lets the next delivery of the key go (see [`order`]).
pub(super) async fn finish(
    conn: &mut Connection,
    delivery_id: i64,
    attempt: &AttemptRecord,
    next: NextStep,
) -> Result<(), Failure> {
    let step = Step::new(delivery_id, attempt, next);
    if step.record(&*conn, false).await? > 0 {
        return Ok(());
    }
    let tx = conn.transaction().await?;
    let key = order::key_of(&tx, delivery_id).await?;
    if let Some(key) = &key {
        order::lock_keys(&tx, std::slice::from_ref(key)).await?;
    }
    step.record(&tx, true).await?;
    if let Some((route, key)) = &key {
        order::let_next_go(&tx, route, key).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// One attempt's record, as [`DELIVERED`] or [`FAILED`] take it.
struct Step<'a> {
    delivery_id: i64,
    started_at: chrono::DateTime<chrono::Utc>,
    duration_ms: i64,
    http_status: Option<i32>,
    error: &'a Option<String>,
    next: NextStep,
}

impl<'a> Step<'a> {
    fn new(delivery_id: i64, attempt: &'a AttemptRecord, next: NextStep) -> Self {
        Step {
            delivery_id,
            started_at: whole_millis(attempt.started_at),
            duration_ms: attempt.duration.as_millis() as i64,
            http_status: attempt.http_status.map(i32::from),
            error: &attempt.error,
            next,
        }
    }

    /// Records it on `client`; `any` records it whatever key the delivery holds. Returns the
    /// rows written (0: not recorded, the delivery holds a key).
    async fn record(&self, client: &impl GenericClient, any: bool) -> Result<u64, Failure> {
        let (state, outcome, due_at) = match self.next {
            NextStep::Delivered => {
                let statement = client.prepare_cached(DELIVERED).await?;
                let done = [
                    &self.delivery_id as _,
                    &self.started_at as _,
                    &self.duration_ms as _,
                    &self.http_status as _,
                    &any as _,
                ];
                return Ok(client.execute(&statement, &done).await?);
            }
            NextStep::RetryAt(at) => ("pending", "retry", Some(whole_millis(at))),
            NextStep::Dead => ("dead", "dead", None),
        };
        let statement = client.prepare_cached(FAILED).await?;
        let failed = [
            &self.delivery_id as _,
            &self.started_at as _,
            &self.duration_ms as _,
            &outcome as _,
            &state as _,
            &due_at as _,
            &self.http_status as _,
            self.error as _,
            &any as _,
        ];
        Ok(client.execute(&statement, &failed).await?)
    }
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
