//! Pruning, on one replica at a time: deleting events past the dedupe window and dropping bodies
//! past retention, a chunk per statement, never touching an event whose deliveries are not
//! finished.
//!
//! The replica that prunes holds an advisory lock for its pass; another replica's pass finds it
//! taken and does nothing (the next interval tries again). The lock is the session's, so a
//! replica that dies mid-pass releases it with its connection.

use std::time::Duration;

use deadpool_postgres::{Object, Transaction};

use super::error::Failure;
use super::order;
use super::pool::{bounded, Connection, Db};
use super::schema::PRUNE_LOCK;
use crate::store::{PruneStats, StoreError};

/// Rows one pruning step deletes or strips, so that no statement holds locks for long.
const PRUNE_CHUNK: i64 = 2000;

/// An event none of whose deliveries is waiting or running, over `events e`.
const FINISHED: &str =
    "NOT EXISTS (SELECT FROM deliveries x WHERE x.event_seq = e.seq AND x.state IN ('pending', 'inflight'))";

/// Prunes, unless another replica is pruning. Ids are kept for the longer of the two
/// durations: an event's id must be remembered for as long as its body is.
pub(super) async fn prune(
    db: &Db,
    dedupe_window: Duration,
    retention: Duration,
) -> Result<PruneStats, StoreError> {
    let doing = "prune the inbox";
    let mut conn = db.connection().await.map_err(|f| db.error(doing, f))?;
    let result = locked_pass(&mut conn, dedupe_window.max(retention), retention).await;
    if result.as_ref().is_err_and(Failure::spoils_the_connection) {
        drop(Object::take(conn));
    }
    result.map_err(|f| db.error(doing, f))
}

/// Takes the pruning lock, prunes and releases it; nothing when another replica holds it.
async fn locked_pass(
    conn: &mut Connection,
    keep_ids: Duration,
    keep_bodies: Duration,
) -> Result<PruneStats, Failure> {
    let locked: bool = bounded(conn, async |conn| {
        let row = conn
            .query_one("SELECT pg_try_advisory_lock($1)", &[&PRUNE_LOCK])
            .await?;
        Ok(row.try_get(0)?)
    })
    .await?;
    if !locked {
        tracing::debug!("another replica is pruning; skipping this pass");
        return Ok(PruneStats::default());
    }
    let result = pass(conn, keep_ids, keep_bodies).await;
    // Unlocking fails only with the connection, whose end releases the lock as well.
    let _ = conn
        .execute("SELECT pg_advisory_unlock($1)", &[&PRUNE_LOCK])
        .await;
    result
}

/// Steps of [`PRUNE_CHUNK`] rows until a step finds less than a chunk to do.
async fn pass(
    conn: &mut Connection,
    keep_ids: Duration,
    keep_bodies: Duration,
) -> Result<PruneStats, Failure> {
    let mut total = PruneStats::default();
    loop {
        let step = bounded(conn, async |conn| step(conn, keep_ids, keep_bodies).await).await?;
        total.events_deleted += step.events_deleted;
        total.bodies_dropped += step.bodies_dropped;
        if step.events_deleted < PRUNE_CHUNK as u64 && step.bodies_dropped < PRUNE_CHUNK as u64 {
            bounded(conn, async |conn| forget_activity(conn, keep_ids).await).await?;
            return Ok(total);
        }
    }
}

/// One step: deletes up to a chunk of finished events received longer than `keep_ids` ago
/// (their deliveries and attempts go with them), and drops the bodies of up to a chunk received
/// longer than `keep_bodies` ago.
async fn step(
    conn: &mut Connection,
    keep_ids: Duration,
    keep_bodies: Duration,
) -> Result<PruneStats, Failure> {
    let tx = conn.transaction().await?;
    let deleted = delete_finished(&tx, keep_ids).await?;
    tx.commit().await?;
    let stripped = conn
        .execute(
            &format!(
                "UPDATE events SET body = NULL WHERE seq IN (
                     SELECT seq FROM events e
                     WHERE received_at < now() - make_interval(secs => $1)
                       AND body IS NOT NULL AND {FINISHED}
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
            &[&keep_bodies.as_secs_f64(), &PRUNE_CHUNK],
        )
        .await?;
    Ok(PruneStats {
        events_deleted: deleted,
        bodies_dropped: stripped,
    })
}

/// Deletes, in `tx`, up to a chunk of finished events received longer than `keep_ids` ago.
/// Deleting a dead letter that blocks its key lets the next delivery of the key go (see
/// [`order`]). The keys' locks are taken before anything is deleted, as a skip or a finish
/// takes its key's lock before it touches a delivery: taken after the delete, they could wait
/// for a skip that waits for a deleted row. The chosen events are locked; the delete checks
/// again that each is still finished (a replay may have come in between). The events'
/// deliveries go with them in the same statement (a trigger on `events`: migration 5).
async fn delete_finished(tx: &Transaction<'_>, keep_ids: Duration) -> Result<u64, Failure> {
    let chosen = tx
        .query_one(
            &format!(
                "WITH doomed AS (
                     SELECT seq FROM events e
                     WHERE received_at < now() - make_interval(secs => $1) AND {FINISHED}
                     LIMIT $2 FOR UPDATE SKIP LOCKED
                 ), blocked AS (
                     SELECT DISTINCT route, order_key FROM deliveries
                     WHERE event_seq IN (SELECT seq FROM doomed)
                       AND state = 'dead' AND order_blocks AND order_key IS NOT NULL
                 )
                 SELECT (SELECT coalesce(array_agg(seq), '{{}}') FROM doomed),
                        (SELECT coalesce(array_agg(route), '{{}}') FROM blocked),
                        (SELECT coalesce(array_agg(order_key), '{{}}') FROM blocked)"
            ),
            &[&keep_ids.as_secs_f64(), &PRUNE_CHUNK],
        )
        .await?;
    let seqs: Vec<i64> = chosen.try_get(0)?;
    let routes: Vec<String> = chosen.try_get(1)?;
    let keys: Vec<String> = chosen.try_get(2)?;
    let blocked: Vec<(String, String)> = routes.into_iter().zip(keys).collect();
    if seqs.is_empty() {
        return Ok(0);
    }
    if !blocked.is_empty() {
        order::lock_keys(tx, &blocked).await?;
    }
    let deleted = tx
        .execute(
            &format!("DELETE FROM events e WHERE seq = ANY($1) AND {FINISHED}"),
            &[&seqs],
        )
        .await?;
    for (route, key) in &blocked {
        order::let_next_go(tx, route, key).await?;
    }
    Ok(deleted)
}

/// Forgets the activity counts of the minutes before `keep_ids`, as the events' ids are
/// forgotten: a few rows per minute, deleted at once.
async fn forget_activity(conn: &Connection, keep_ids: Duration) -> Result<(), Failure> {
    conn.execute(
        "DELETE FROM event_minutes WHERE minute < now() - make_interval(secs => $1)",
        &[&keep_ids.as_secs_f64()],
    )
    .await?;
    Ok(())
}
