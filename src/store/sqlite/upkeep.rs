//! What the writer thread does between batches: merging new event ids into the dedupe index
//! (`dedupe`) and its part of the WAL checkpoints (`checkpoint`). Neither may hold up a
//! batch's callers, so both run after the batch is answered or handed to the fsync threads.

use rusqlite::{Connection, TransactionBehavior};

use super::checkpoint::Checkpoints;
use super::dedupe::SharedIds;
use super::error::Failure;
use super::writer::Upkeep;

/// The store's upkeep, given to its writer thread.
pub(super) struct StoreUpkeep {
    /// The ids the insert and prune jobs share.
    pub(super) ids: SharedIds,
    /// The writer's side of checkpointing.
    pub(super) checkpoints: Checkpoints,
}

impl Upkeep for StoreUpkeep {
    fn settled(&mut self, committed: bool) {
        self.ids.lock().settled(committed);
    }

    fn between_batches(&mut self, conn: &mut Connection) {
        if self.ids.lock().merge_due() {
            merge_a_slice(conn, &self.ids);
        }
        self.checkpoints.between_batches(conn);
    }
}

/// Copies one slice of new ids into `event_ids`, in its own transaction. Nothing waits for it,
/// and it is idempotent: after a failure (logged) the next batch tries again.
fn merge_a_slice(conn: &mut Connection, ids: &SharedIds) {
    let mut ids = ids.lock();
    let result = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Failure::from)
        .and_then(|tx| {
            ids.merge_step(&tx)?;
            tx.commit().map_err(Failure::from)
        });
    ids.settled(result.is_ok());
    if let Err(e) = result {
        let e = e.into_store_error("merge new event ids into the dedupe index");
        tracing::warn!(error = %e, "the next batch tries again");
    }
}
