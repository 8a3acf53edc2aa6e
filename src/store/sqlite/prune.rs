//! Pruning: deleting events past the dedupe window and dropping bodies past retention, a chunk
//! per transaction, never touching an event whose deliveries are not finished.

use std::time::Duration;

use rusqlite::{params, Transaction};

use super::dedupe::{EventIds, SharedIds};
use super::error::Failure;
use super::millis::now_ms;
use super::order::{keys_blocked_by_event, let_next_go};
use super::writer::Writer;
use crate::store::{PruneStats, StoreError};

/// Rows one pruning step deletes, so that pruning never holds the writer for long.
const PRUNE_CHUNK: i64 = 2000;

/// Prunes in steps of [`PRUNE_CHUNK`] rows until a step finds less than a chunk to do. Ids are
/// kept for the longer of the two durations: an event's id must be remembered for as long as
/// its body is.
pub(super) async fn prune(
    writer: &Writer,
    ids: &SharedIds,
    dedupe_window: Duration,
    retention: Duration,
) -> Result<PruneStats, StoreError> {
    let now = now_ms();
    let keep_ids = dedupe_window.max(retention).as_millis() as i64;
    let keep_bodies = retention.as_millis() as i64;
    let mut total = PruneStats::default();
    loop {
        let ids = ids.clone();
        let step = writer
            .write("prune the inbox", move |tx| {
                prune_step(tx, &mut ids.lock(), now - keep_ids, now - keep_bodies)
            })
            .await?;
        total.events_deleted += step.events_deleted;
        total.bodies_dropped += step.bodies_dropped;
        if step.events_deleted < PRUNE_CHUNK as u64 && step.bodies_dropped < PRUNE_CHUNK as u64 {
            return Ok(total);
        }
    }
}

/// One step: deletes up to a chunk of finished events received before `delete_before` (with
/// their deliveries, attempts and ids, and the activity counts of the minutes before it), and
/// drops the bodies of up to a chunk received before
/// `strip_before`.
fn prune_step(
    tx: &Transaction<'_>,
    ids: &mut EventIds,
    delete_before: i64,
    strip_before: i64,
) -> Result<PruneStats, Failure> {
    const UNFINISHED: &str = "EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = events.seq AND x.state IN ('pending', 'inflight'))";
    let doomed: Vec<(i64, String)> = tx
        .prepare_cached(&format!(
            "SELECT seq, id FROM events WHERE received_at < ?1 AND NOT {UNFINISHED} LIMIT ?2"
        ))?
        .query_map(params![delete_before, PRUNE_CHUNK], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    for (seq, id) in &doomed {
        let blocked = keys_blocked_by_event(tx, *seq)?;
        tx.execute(
            "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_seq = ?1)",
            [seq],
        )?;
        tx.execute("DELETE FROM deliveries WHERE event_seq = ?1", [seq])?;
        tx.execute("DELETE FROM events WHERE seq = ?1", [seq])?;
        ids.remove(tx, id, *seq)?;
        for (route, key) in blocked {
            let_next_go(tx, &route, &key)?;
        }
    }
    // The activity counts go with the ids: a minute before the window counts only pruned events.
    tx.prepare_cached("DELETE FROM event_minutes WHERE minute <= ?1")?
        .execute([delete_before - 60_000])?;
    let stripped = tx.execute(
        &format!(
            "UPDATE events SET body = NULL WHERE seq IN (SELECT seq FROM events
             WHERE received_at < ?1 AND body IS NOT NULL AND NOT {UNFINISHED} LIMIT ?2)"
        ),
        params![strip_before, PRUNE_CHUNK],
    )?;
    Ok(PruneStats {
        events_deleted: doomed.len() as u64,
        bodies_dropped: stripped as u64,
    })
}
