//! Recognising an event seen before, by its id, without writing to a random page of an index for
//! every event.
//!
//! Ids that providers do not order (liveDesk's delivery UUIDs, hashes of bodies, any sender's
//! random ids) used to go into a `UNIQUE` index on `events.id`. A random key lands on a random
//! leaf of that index, and SQLite writes every page a transaction changes to the WAL whole: once
//! the index had more leaves than a group commit had events, each event cost a 4 KiB frame of
//! WAL for its index entry alone, three times the WAL of time-ordered ids
//! (docs/performance-log.md, "Random ids").
//!
//! So the ids are kept in two places, by an 8-byte hash of the id ([`id_hash`]):
//!
//! - `event_ids_new (seq, hash)`: the ids of the latest events, in the order they came. Its key
//!   is the event's `seq`, so each insert writes at its end, on the pages the commit writes
//!   anyway. The writer thread keeps the same entries in memory ([`EventIds`]), so that looking
//!   an id up there costs no scan.
//! - `event_ids (hash, seq)`: every older id, sorted by hash. Once `event_ids_new` holds
//!   [`MERGE_AT`] ids, the writer copies them into it in hash order, [`MERGE_SLICE`] per
//!   transaction between batches: a merge touches each leaf of `event_ids` about once, instead
//!   of once per id. Once all are copied, it deletes them from `event_ids_new`,
//!   [`DELETE_SLICE`] rows per transaction, oldest first.
//!
//! Each slice holds up the writer's next batch, and so the requests in it, for as long as it
//! takes: slices of 1,024 ids took 1.3 ms at the median and 4.4 ms at p90, and the delete of all
//! 65,536 rows at once up to 17 ms, and at half the saturation load they put about one request
//! in a hundred behind a slice: the p99 (docs/performance.md, "The merge of new ids held up the
//! writer").
//!
//! A merge is also paced ([`MERGE_PACE`]): each new id that commits earns the merge the right
//! to copy two ids, and a slice runs only once it has earned a whole slice. A slice after every
//! batch put a whole merge into about half a second, in which the writer took 15 points more
//! of the core and left it almost nothing to spare, so at half the saturation load most of the
//! requests slower than 5 ms fell into those half seconds (docs/performance.md, "The merge in a
//! burst"). Paced, a merge is spread over the next ~41,000 new ids and done well before the
//! next one is due; with no new ids it waits, its ids still in `event_ids_new` (and in the
//! writer's memory), where every lookup finds them.
//!
//! A hash is only a hint: an id is a duplicate only if the event a matching entry points to has
//! that exact id, so two ids whose hashes collide are two events. Readers of other connections,
//! which cannot see the writer's memory, find an id with [`SEQ_OF_ID`].

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use super::error::Failure;

/// Ids in `event_ids_new` that start a merge into `event_ids`. The writer keeps as many in
/// memory (about 2 MiB, up to 1.6 × that while a paced merge runs); the more, the fewer times a
/// merge rewrites each leaf of `event_ids`.
pub(super) const MERGE_AT: usize = 65536;
/// Ids a merge copies per transaction: small enough that a slice delays the next batch by a
/// few tenths of a millisecond.
pub(super) const MERGE_SLICE: usize = 256;
/// Merged rows of `event_ids_new` a merge deletes per transaction, once every id is copied:
/// deleting rows in key order is cheaper than copying them, so a slice of these takes about as
/// long as one of [`MERGE_SLICE`].
pub(super) const DELETE_SLICE: usize = 1024;
/// Ids of merge work each new id pays for once it commits: a slice (of either kind) runs only
/// when the new ids since the last one have paid for [`MERGE_SLICE`]. A merge of [`MERGE_AT`]
/// ids takes 1.25 × as many slices' worth of work (its copies, then a quarter as many slices of
/// deletes), so it ends after ~0.63 × [`MERGE_AT`] new ids, before the next merge is due.
pub(super) const MERGE_PACE: usize = 2;

/// The `seq` of the event with id `?2` whose hash is `?1`, for connections other than the
/// writer's: looked up in `event_ids` by its key, and in `event_ids_new` by a scan of its
/// narrow rows, at most about 1.6 × [`MERGE_AT`] (a merge under way, and the new ids that pay
/// for it).
pub(super) const SEQ_OF_ID: &str = "SELECT e.seq FROM events e WHERE e.id = ?2 AND e.seq IN (
     SELECT seq FROM event_ids WHERE hash = ?1 UNION ALL SELECT seq FROM event_ids_new WHERE hash = ?1)";

/// The hash ids are kept by: the first 8 bytes of the id's SHA-256, stable across versions and
/// machines (it is stored), and as hard to aim as the id itself.
pub(super) fn id_hash(id: &str) -> i64 {
    let digest = Sha256::digest(id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The `seq` of the event with id `id`, through any connection.
pub(super) fn seq_of_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(SEQ_OF_ID)?
        .query_row(params![id_hash(id), id], |r| r.get(0))
        .optional()
}

/// One id as the tables key it: its hash and its event's `seq`.
type Entry = (i64, i64);

/// The writer's [`EventIds`], shared by the jobs that insert and delete events and by the
/// writer thread's upkeep. Only the writer thread locks it, so the lock is never contended.
#[derive(Clone)]
pub(super) struct SharedIds(Arc<Mutex<EventIds>>);

impl SharedIds {
    /// Shares `ids`.
    pub(super) fn new(ids: EventIds) -> SharedIds {
        SharedIds(Arc::new(Mutex::new(ids)))
    }

    /// The ids. A job that panicked while holding them took the writer thread down with it,
    /// so a poisoned lock is never seen by a working store.
    pub(super) fn lock(&self) -> MutexGuard<'_, EventIds> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer's view of the ids that are not (all) in `event_ids` yet: exactly the rows of
/// `event_ids_new` as of the last commit, split into those being merged and the rest. Changes
/// made inside a transaction are applied only when it commits ([`EventIds::settled`]), so a
/// batch that rolls back leaves no trace here either.
#[derive(Debug, Default)]
pub(super) struct EventIds {
    /// Rows of `event_ids_new` not part of the merge under way.
    fresh: BTreeSet<Entry>,
    /// The merge under way, if any.
    merge: Option<Merge>,
    /// What the open transaction added to `event_ids_new`.
    added: Vec<Entry>,
    /// What the open transaction deleted (pruned events).
    removed: Vec<Entry>,
    /// How far the open transaction took the merge.
    merged_to: Option<Progress>,
    /// Merge work, in ids, that committed new ids have paid for and no slice has used yet (at
    /// most one slice's worth).
    paid: usize,
}

/// Entries being copied into `event_ids`, in hash order, then deleted from `event_ids_new`.
#[derive(Debug)]
struct Merge {
    entries: Vec<Entry>,
    /// Their `seq`s, in order: their rows of `event_ids_new` are deleted in this order, up to
    /// one of them per transaction.
    seqs: Vec<i64>,
    /// How far it got, as of the last commit.
    done: Progress,
}

/// How far a merge got: entries copied into `event_ids`, then rows deleted from
/// `event_ids_new` (counted in [`Merge::seqs`]).
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    copied: usize,
    deleted: usize,
}

impl EventIds {
    /// Reads `event_ids_new` (left full by a merge that a stop interrupted, it is merged again:
    /// copying is idempotent).
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<EventIds> {
        let fresh = conn
            .prepare("SELECT hash, seq FROM event_ids_new")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(EventIds {
            fresh,
            ..EventIds::default()
        })
    }

    /// Whether an event with this exact id is stored (committed, or written earlier in the
    /// open transaction).
    pub(super) fn seen(&self, tx: &Transaction<'_>, hash: i64, id: &str) -> Result<bool, Failure> {
        let in_memory = self
            .added
            .iter()
            .copied()
            .chain(
                self.fresh
                    .range((hash, i64::MIN)..=(hash, i64::MAX))
                    .copied(),
            )
            .chain(self.merge.iter().flat_map(|m| m.with_hash(hash)))
            .filter(|(h, _)| *h == hash);
        let mut is_id =
            tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM events WHERE seq = ?1 AND id = ?2)")?;
        for (_, seq) in in_memory {
            if is_id.query_row(params![seq, id], |r| r.get::<_, bool>(0))? {
                return Ok(true);
            }
        }
        let merged = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM event_ids i JOIN events e ON e.seq = i.seq
                 WHERE i.hash = ?1 AND e.id = ?2)",
            )?
            .query_row(params![hash, id], |r| r.get::<_, bool>(0))?;
        Ok(merged)
    }

    /// Records the id of an event just inserted as `seq`.
    pub(super) fn add(&mut self, tx: &Transaction<'_>, hash: i64, seq: i64) -> Result<(), Failure> {
        tx.prepare_cached("INSERT INTO event_ids_new (seq, hash) VALUES (?1, ?2)")?
            .execute(params![seq, hash])?;
        self.added.push((hash, seq));
        Ok(())
    }

    /// Forgets the id of an event being deleted.
    pub(super) fn remove(
        &mut self,
        tx: &Transaction<'_>,
        id: &str,
        seq: i64,
    ) -> Result<(), Failure> {
        let hash = id_hash(id);
        tx.prepare_cached("DELETE FROM event_ids WHERE hash = ?1 AND seq = ?2")?
            .execute(params![hash, seq])?;
        tx.prepare_cached("DELETE FROM event_ids_new WHERE seq = ?1")?
            .execute([seq])?;
        self.removed.push((hash, seq));
        Ok(())
    }

    /// Whether [`EventIds::merge_step`] has work: a merge under way, or enough new ids to
    /// start one.
    pub(super) fn wants_merge(&self) -> bool {
        self.merge.is_some() || self.fresh.len() >= MERGE_AT
    }

    /// Whether the writer should take a merge step now: there is work and new ids have paid
    /// for a slice of it ([`MERGE_PACE`]), or a merge under way has fallen so far behind that
    /// enough new ids for the next one are waiting.
    pub(super) fn merge_due(&self) -> bool {
        let behind = self.merge.is_some() && self.fresh.len() >= MERGE_AT;
        self.wants_merge() && (self.paid >= MERGE_SLICE || behind)
    }

    /// Copies the next slice of the merge into `event_ids`, starting a merge first if enough
    /// ids are new; once all are copied, deletes the next slice of them from `event_ids_new`.
    pub(super) fn merge_step(&mut self, tx: &Transaction<'_>) -> Result<(), Failure> {
        if self.merge.is_none() && self.fresh.len() >= MERGE_AT {
            self.merge = Some(Merge::of(std::mem::take(&mut self.fresh)));
        }
        let Some(merge) = &self.merge else {
            return Ok(());
        };
        let next = if merge.done.copied < merge.entries.len() {
            merge.copy_slice(tx)?
        } else {
            merge.delete_slice(tx)?
        };
        self.merged_to = Some(next);
        Ok(())
    }

    /// The open transaction ended: what it did becomes the state if it committed, and is
    /// forgotten if it rolled back.
    pub(super) fn settled(&mut self, committed: bool) {
        let added = std::mem::take(&mut self.added);
        let removed = std::mem::take(&mut self.removed);
        let merged_to = self.merged_to.take();
        if !committed {
            return;
        }
        if merged_to.is_some() {
            self.paid = self.paid.saturating_sub(MERGE_SLICE);
        }
        self.paid = (self.paid + added.len() * MERGE_PACE).min(MERGE_SLICE);
        self.fresh.extend(added);
        for entry in removed {
            self.fresh.remove(&entry);
            if let Some(merge) = &mut self.merge {
                merge.forget(entry);
            }
        }
        if let (Some(merge), Some(to)) = (&mut self.merge, merged_to) {
            merge.done = to;
            if to.deleted == merge.seqs.len() {
                self.merge = None;
            }
        }
    }
}

impl Merge {
    /// A merge of these entries, none copied yet.
    fn of(entries: BTreeSet<Entry>) -> Merge {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut seqs: Vec<i64> = entries.iter().map(|(_, seq)| *seq).collect();
        seqs.sort_unstable();
        Merge {
            entries,
            seqs,
            done: Progress::default(),
        }
    }

    /// Copies the next [`MERGE_SLICE`] entries into `event_ids`; how far that takes it.
    fn copy_slice(&self, tx: &Transaction<'_>) -> Result<Progress, Failure> {
        let copied = (self.done.copied + MERGE_SLICE).min(self.entries.len());
        let mut copy =
            tx.prepare_cached("INSERT OR IGNORE INTO event_ids (hash, seq) VALUES (?1, ?2)")?;
        for (hash, seq) in &self.entries[self.done.copied..copied] {
            copy.execute(params![hash, seq])?;
        }
        Ok(Progress {
            copied,
            ..self.done
        })
    }

    /// Deletes the next [`DELETE_SLICE`] merged rows of `event_ids_new`, oldest first; how far
    /// that takes it.
    fn delete_slice(&self, tx: &Transaction<'_>) -> Result<Progress, Failure> {
        let deleted = (self.done.deleted + DELETE_SLICE).min(self.seqs.len());
        if let Some(through) = deleted.checked_sub(1).map(|last| self.seqs[last]) {
            tx.prepare_cached("DELETE FROM event_ids_new WHERE seq <= ?1")?
                .execute([through])?;
        }
        Ok(Progress {
            deleted,
            ..self.done
        })
    }

    /// The entries with this hash (in either part: copied or not).
    fn with_hash(&self, hash: i64) -> impl Iterator<Item = Entry> + '_ {
        let from = self.entries.partition_point(|e| *e < (hash, i64::MIN));
        self.entries[from..]
            .iter()
            .copied()
            .take_while(move |(h, _)| *h == hash)
    }

    /// Drops an entry whose event was deleted, so that the merge does not copy it.
    fn forget(&mut self, entry: Entry) {
        if let Ok(at) = self.entries.binary_search(&entry) {
            self.entries.remove(at);
            if at < self.done.copied {
                self.done.copied -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::TransactionBehavior;

    fn inbox() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let (conn, _) = super::super::open_connections(&dir.path().join("x.db"), 0).unwrap();
        (dir, conn)
    }

    /// Inserts an event row with this id and returns its seq (as intake would, minus the
    /// columns that do not matter here).
    fn insert(tx: &Transaction<'_>, ids: &mut EventIds, id: &str) -> i64 {
        tx.execute(
            "INSERT INTO events (id, source, endpoint, provider_id, event_type, received_at)
             VALUES (?1, 'alpha', 'default', ?1, 't', 0)",
            [id],
        )
        .unwrap();
        let seq = tx.last_insert_rowid();
        ids.add(tx, id_hash(id), seq).unwrap();
        seq
    }

    /// Rows in `event_ids` and in `event_ids_new`.
    fn id_rows(conn: &Connection) -> (usize, usize) {
        let count = |table: &str| -> usize {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        (count("event_ids"), count("event_ids_new"))
    }

    fn in_tx<T>(
        conn: &mut Connection,
        ids: &mut EventIds,
        work: impl FnOnce(&Transaction<'_>, &mut EventIds) -> T,
    ) -> T {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let out = work(&tx, ids);
        tx.commit().unwrap();
        ids.settled(true);
        out
    }

    fn seen(conn: &mut Connection, ids: &EventIds, id: &str) -> bool {
        let tx = conn.transaction().unwrap();
        ids.seen(&tx, id_hash(id), id).unwrap()
    }

    #[test]
    fn a_colliding_hash_never_makes_another_id_a_duplicate() {
        let (_dir, mut conn) = inbox();
        let mut ids = EventIds::default();
        let a = in_tx(&mut conn, &mut ids, |tx, ids| insert(tx, ids, "evt_a"));
        // An entry with b's hash pointing at a's event: what a collision of the two would be,
        // in memory and in `event_ids` alike.
        ids.fresh.insert((id_hash("evt_b"), a));
        conn.execute(
            "INSERT INTO event_ids (hash, seq) VALUES (?1, ?2)",
            params![id_hash("evt_b"), a],
        )
        .unwrap();
        assert!(seen(&mut conn, &ids, "evt_a"));
        assert!(
            !seen(&mut conn, &ids, "evt_b"),
            "a hash hit is checked against the full id"
        );
        assert_eq!(seq_of_id(&conn, "evt_a").unwrap(), Some(a));
        assert_eq!(seq_of_id(&conn, "evt_b").unwrap(), None);
    }

    #[test]
    fn a_rolled_back_insert_leaves_nothing_behind() {
        let (_dir, mut conn) = inbox();
        let mut ids = EventIds::default();
        {
            let tx = conn.transaction().unwrap();
            insert(&tx, &mut ids, "evt_a");
            assert!(
                ids.seen(&tx, id_hash("evt_a"), "evt_a").unwrap(),
                "seen within its transaction"
            );
        }
        ids.settled(false);
        assert!(!seen(&mut conn, &ids, "evt_a"));
        assert!(ids.fresh.is_empty());
    }

    #[test]
    fn ids_stay_found_before_during_and_after_a_merge_and_after_reopening() {
        let (dir, mut conn) = inbox();
        let mut ids = EventIds::default();
        let total = MERGE_AT + MERGE_SLICE / 2;
        let name = |n: usize| format!("evt_{n}");
        in_tx(&mut conn, &mut ids, |tx, ids| {
            for n in 0..total {
                insert(tx, ids, &name(n));
            }
        });
        assert!(ids.wants_merge());
        let mut steps = 0;
        while ids.wants_merge() {
            let (merged, new) = id_rows(&conn);
            in_tx(&mut conn, &mut ids, |tx, ids| ids.merge_step(tx).unwrap());
            steps += 1;
            let (merged_after, new_after) = id_rows(&conn);
            assert!(
                merged_after - merged <= MERGE_SLICE,
                "step {steps} copies a slice"
            );
            assert!(
                new - new_after <= DELETE_SLICE,
                "step {steps} deletes a slice"
            );
            assert!(
                new_after == new || merged == total,
                "step {steps}: nothing leaves event_ids_new before every id is copied"
            );
            for n in [0, MERGE_AT / 2, total - 1] {
                assert!(seen(&mut conn, &ids, &name(n)), "{n} after {steps} steps");
                assert!(seq_of_id(&conn, &name(n)).unwrap().is_some());
            }
            assert!(!seen(&mut conn, &ids, "evt_never"));
        }
        assert_eq!(
            steps,
            total.div_ceil(MERGE_SLICE) + total.div_ceil(DELETE_SLICE)
        );
        assert_eq!(id_rows(&conn), (total, 0));
        assert!(ids.fresh.is_empty() && ids.merge.is_none());

        let later = in_tx(&mut conn, &mut ids, |tx, ids| insert(tx, ids, "evt_later"));
        drop(conn);
        let conn = super::super::open_connection(&dir.path().join("x.db")).unwrap();
        let reloaded = EventIds::load(&conn).unwrap();
        assert_eq!(
            reloaded.fresh.iter().copied().collect::<Vec<_>>(),
            vec![(id_hash("evt_later"), later)]
        );
    }

    /// Fills an inbox with [`MERGE_AT`] events, takes the merge `steps` steps, then prunes
    /// every thousandth event and lets the merge finish: no entry may outlive its event.
    fn prune_during_a_merge(steps: usize) {
        let (_dir, mut conn) = inbox();
        let mut ids = EventIds::default();
        let seqs: Vec<i64> = in_tx(&mut conn, &mut ids, |tx, ids| {
            (0..MERGE_AT)
                .map(|n| insert(tx, ids, &format!("evt_{n}")))
                .collect()
        });
        for _ in 0..steps {
            in_tx(&mut conn, &mut ids, |tx, ids| ids.merge_step(tx).unwrap());
        }
        assert!(ids.merge.is_some(), "the merge is still under way");
        in_tx(&mut conn, &mut ids, |tx, ids| {
            for (n, seq) in seqs.iter().enumerate().filter(|(n, _)| n % 1000 == 0) {
                tx.execute("DELETE FROM events WHERE seq = ?1", [seq])
                    .unwrap();
                ids.remove(tx, &format!("evt_{n}"), *seq).unwrap();
            }
        });
        while ids.wants_merge() {
            in_tx(&mut conn, &mut ids, |tx, ids| ids.merge_step(tx).unwrap());
        }
        assert_eq!(
            id_rows(&conn),
            (MERGE_AT - MERGE_AT.div_ceil(1000), 0),
            "no entry outlives its event"
        );
        assert!(!seen(&mut conn, &ids, "evt_0"));
        assert!(seen(&mut conn, &ids, "evt_1"));
    }

    /// Commits `count` new ids, `per_commit` to a transaction, as intake would, taking a merge
    /// step whenever one is due, as the writer does between batches; the merge steps taken.
    fn intake_with_paced_merge(
        conn: &mut Connection,
        ids: &mut EventIds,
        first: usize,
        count: usize,
        per_commit: usize,
    ) -> usize {
        let mut steps = 0;
        for start in (first..first + count).step_by(per_commit) {
            in_tx(conn, ids, |tx, ids| {
                for n in start..(start + per_commit).min(first + count) {
                    insert(tx, ids, &format!("evt_{n}"));
                }
            });
            if ids.merge_due() {
                in_tx(conn, ids, |tx, ids| ids.merge_step(tx).unwrap());
                steps += 1;
            }
        }
        steps
    }

    #[test]
    fn a_merge_step_is_due_only_once_new_ids_have_paid_for_it() {
        let (_dir, mut conn) = inbox();
        let mut ids = EventIds::default();
        intake_with_paced_merge(&mut conn, &mut ids, 0, MERGE_AT, MERGE_AT);
        assert!(ids.merge.is_some(), "enough ids started a merge");
        assert!(!ids.merge_due(), "the step just taken used what was paid");
        let per_slice = MERGE_SLICE / MERGE_PACE;
        let steps = intake_with_paced_merge(&mut conn, &mut ids, MERGE_AT, per_slice - 1, 1);
        assert_eq!(steps, 0, "{} new ids do not pay for a slice", per_slice - 1);
        assert!(ids.wants_merge() && !ids.merge_due());
        intake_with_paced_merge(&mut conn, &mut ids, MERGE_AT + per_slice - 1, 1, 1);
        assert_eq!(ids.merge.as_ref().unwrap().done.copied, 2 * MERGE_SLICE);
    }

    #[test]
    fn a_paced_merge_ends_before_the_next_one_is_due() {
        let (_dir, mut conn) = inbox();
        let mut ids = EventIds::default();
        intake_with_paced_merge(&mut conn, &mut ids, 0, MERGE_AT, MERGE_AT);
        let mut new_ids = 0;
        while ids.merge.is_some() {
            intake_with_paced_merge(&mut conn, &mut ids, MERGE_AT + new_ids, 8, 8);
            new_ids += 8;
        }
        assert!(
            (MERGE_AT / 2..MERGE_AT * 2 / 3).contains(&new_ids),
            "spread over about 0.63 × MERGE_AT new ids, not more, not all at once: {new_ids}"
        );
        assert_eq!(id_rows(&conn), (MERGE_AT, new_ids));
        assert_eq!(ids.fresh.len(), new_ids);
    }

    #[test]
    fn a_merge_that_fell_behind_takes_a_step_after_every_batch() {
        let (_dir, mut conn) = inbox();
        let mut ids = EventIds::default();
        intake_with_paced_merge(&mut conn, &mut ids, 0, MERGE_AT, MERGE_AT);
        in_tx(&mut conn, &mut ids, |tx, ids| {
            for n in MERGE_AT..2 * MERGE_AT {
                insert(tx, ids, &format!("evt_{n}"));
            }
        });
        in_tx(&mut conn, &mut ids, |tx, ids| ids.merge_step(tx).unwrap());
        assert_eq!(ids.paid, 0, "the step used what the new ids paid");
        assert!(ids.merge_due(), "a whole merge's worth of new ids waits");
    }

    #[test]
    fn a_pruned_id_is_forgotten_even_by_a_merge_under_way() {
        prune_during_a_merge(1);
    }

    #[test]
    fn a_pruned_id_is_forgotten_while_a_merge_deletes_what_it_copied() {
        prune_during_a_merge(MERGE_AT / MERGE_SLICE + 1);
    }
}
