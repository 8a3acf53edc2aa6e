//! The work queue that replicas share: claiming due deliveries so that no two replicas run the
//! same one, putting back those whose lease ran out, and making a handler's retries due now.
//!
//! A claim is one statement: it picks due deliveries with `FOR UPDATE SKIP LOCKED`, so that
//! replicas claiming at once each get others rather than waiting on each other, marks them in
//! flight with a lease, and returns them with their events. Leases are reckoned by the
//! database's clock, which every replica shares, never by a replica's own.

use std::time::Duration;

use super::error::Failure;
use super::pool::Connection;
use super::rows::{stored_from_row, EVENT_COLUMNS};
use crate::store::Claimed;

/// Claims up to `$2` due deliveries of handler `$1` with a lease of `$3` seconds; returns them
/// with their events, longest due first. One of an ordered route is due only when no earlier
/// delivery of its route and key is open (see [`crate::store::order`]): whatever snapshot a
/// replica's claim reads, that earlier one is in it as pending, in flight or dead until it is
/// done, so two replicas never run two deliveries of one key at once. Those held back behind
/// their key's head (`held`, see [`super::order`]) are outside `deliveries_ready`, which the
/// claim reads, so a long queue behind one key is never walked.
const CLAIM: &str = "
WITH due AS (
    SELECT id FROM deliveries d
    WHERE state = 'pending' AND NOT held AND handler = $1 AND due_at <= now()
      AND (d.order_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM deliveries p
          WHERE p.route = d.route AND p.order_key = d.order_key AND p.event_seq < d.event_seq
            AND p.state <> 'delivered' AND (p.state <> 'dead' OR p.order_blocks)))
    ORDER BY due_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE deliveries d
    SET state = 'inflight', attempts = d.attempts + 1,
        lease_until = now() + make_interval(secs => $3)
    FROM due WHERE d.id = due.id
    RETURNING d.id, d.event_seq, d.route, d.attempts, d.since, d.due_at,
              d.order_key IS NOT NULL AS ordered
)
SELECT c.id, c.route, c.attempts, c.since, c.ordered, {EVENT_COLUMNS}
FROM claimed c JOIN events e ON e.seq = c.event_seq
ORDER BY c.due_at, c.id";

/// Claims up to `limit` due deliveries of `handler`, leased for `lease`.
pub(super) async fn claim_due(
    conn: &Connection,
    handler: &str,
    limit: usize,
    lease: Duration,
) -> Result<Vec<Claimed>, Failure> {
    let sql = CLAIM.replace("{EVENT_COLUMNS}", EVENT_COLUMNS);
    let statement = conn.prepare_cached(&sql).await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = conn
        .query(&statement, &[&handler, &limit, &lease.as_secs_f64()])
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Claimed {
                delivery_id: row.try_get(0)?,
                route: row.try_get(1)?,
                attempt: row.try_get::<_, i32>(2)?.max(0) as u32,
                since: row.try_get(3)?,
                ordered: row.try_get(4)?,
                event: stored_from_row(row, 5)?,
            })
        })
        .collect()
}

/// Puts in-flight deliveries whose lease has run out back in the queue.
pub(super) async fn release_expired(conn: &Connection) -> Result<u64, Failure> {
    let statement = conn
        .prepare_cached(
            "UPDATE deliveries SET state = 'pending', lease_until = NULL
             WHERE state = 'inflight' AND lease_until < now()",
        )
        .await?;
    Ok(conn.execute(&statement, &[]).await?)
}

/// Makes the pending deliveries of `handler` that wait for a later time due now.
pub(super) async fn expedite(conn: &Connection, handler: &str) -> Result<u64, Failure> {
    let statement = conn
        .prepare_cached(
            "UPDATE deliveries SET due_at = now()
             WHERE state = 'pending' AND handler = $1 AND due_at > now()",
        )
        .await?;
    Ok(conn.execute(&statement, &[&handler]).await?)
}
