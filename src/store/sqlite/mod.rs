//! The embedded store: SQLite in WAL mode with group commit.
//!
//! One writer thread owns the write connection and commits every write in batches (`writer`);
//! with `synchronous = full` intake is answered after hookline's own fsync of the WAL
//! (`wal_sync`). Between batches it merges new event ids into the dedupe index (`dedupe`) and
//! finishes the WAL checkpoints a thread of their own runs (`checkpoint`, both through
//! `upkeep`). Reads for the inspector go through a separate connection, which WAL lets run
//! beside the writer (`reader`). The [`Store`] methods below only say which of the two runs
//! what; the SQL lives in the modules named after what it does (`insert`, `queue`, `attempts`,
//! `replay`, `prune`, `reads`), on top of `schema`, `filters` and `rows`.

mod attempts;
mod backup;
mod batch_thread;
mod checkpoint;
mod dedupe;
mod error;
mod filters;
mod gather;
mod insert;
mod lock;
mod millis;
mod order;
mod prune;
mod queue;
mod reader;
mod reads;
mod replay;
mod rows;
mod schema;
mod upkeep;
mod wal_sync;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

pub use self::backup::Copied;
use self::checkpoint::Checkpoints;
use self::dedupe::{EventIds, SharedIds};
use self::error::Failure;
use self::insert::EventRow;
use self::lock::{DataDirLock, LockError};
use self::millis::now_ms;
use self::reader::Reader;
use self::upkeep::StoreUpkeep;
use self::writer::Writer;
use super::{
    AttemptRecord, Backlog, BlockedKey, Claimed, DeadLetterGroups, DeliveryCounts, DeliveryInfo,
    EventDetail, EventFilter, EventSummary, EventType, InsertOutcome, Leases, MinuteCount,
    NewDelivery, NextStep, OrderedRoute, PruneStats, Store, StoreError,
};
use crate::envelope::Envelope;

/// SQLite durability trade-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// fsync on every commit: an acknowledged event survives power loss.
    Full,
    /// fsync at checkpoints only: survives a crash of hookline, not of the machine.
    Normal,
}

/// The SQLite inbox. Cheap to clone: clones share the writer thread and the read connection.
#[derive(Clone)]
pub struct SqliteStore {
    /// Every write goes through the writer thread.
    writer: Writer,
    /// Connection for inspector reads, beside the writer thanks to WAL.
    reader: Reader,
    /// The data directory's lock: no other hookline opens this inbox while a clone lives.
    _lock: Arc<DataDirLock>,
    /// The ids of recent events, which the insert and prune jobs use on the writer thread.
    ids: SharedIds,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `hookline.db` in `dir` and starts the writer thread, once it
    /// holds the data directory's lock (refused while another hookline holds it).
    pub fn open(dir: &Path, synchronous: Synchronous, max_size: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| error::cannot_open(dir, &e))?;
        let lock = DataDirLock::acquire(dir).map_err(|e| match e {
            LockError::Held { .. } => StoreError::Unavailable(e.to_string()),
            LockError::Io { source, .. } => error::cannot_open(dir, &source),
        })?;
        let path = Self::db_path(dir);
        let opening = |e: Failure| match e {
            Failure::Database(e) => error::cannot_open(dir, &e),
            Failure::Refused(e) => e,
        };
        let (writer, reader) = open_connections(&path, max_size).map_err(opening)?;
        let ids = SharedIds::new(EventIds::load(&writer).map_err(|e| opening(e.into()))?);
        let fsync_wal_of = match synchronous {
            Synchronous::Full => Some(path.as_path()),
            Synchronous::Normal => None,
        };
        let threads = |e| StoreError::Unavailable(format!("cannot start store threads: {e}"));
        let (checkpoints, writer) = Checkpoints::start(&path, writer).map_err(threads)?;
        let upkeep = StoreUpkeep {
            ids: ids.clone(),
            checkpoints,
        };
        let writer = Writer::start(writer, fsync_wal_of, Box::new(upkeep)).map_err(threads)?;
        Ok(SqliteStore {
            writer,
            reader: Reader::new(reader),
            _lock: Arc::new(lock),
            ids,
        })
    }

    /// Whether [`SqliteStore::open`] could open the inbox in `dir` now, found out without
    /// creating or changing anything: what `check-config` runs in its place.
    pub fn check(dir: &Path) -> Result<(), StoreError> {
        if let Some(problem) = error::open_problem(dir) {
            return Err(StoreError::Unavailable(format!(
                "cannot open the inbox in {}: {problem}",
                dir.display()
            )));
        }
        DataDirLock::check_free(dir).map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// The database file inside a data directory.
    pub fn db_path(dir: &Path) -> PathBuf {
        dir.join("hookline.db")
    }
}

/// Opens the writer's connection, brings the schema up to date and bounds the file's size
/// (`max_size` bytes, 0 = no bound), then opens the reader's connection.
fn open_connections(path: &Path, max_size: u64) -> Result<(Connection, Connection), Failure> {
    let writer = open_connection(path)?;
    schema::apply(&writer)?;
    if max_size > 0 {
        let page_size: i64 = writer.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages = (max_size as i64 / page_size).max(1);
        writer.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
    }
    let reader = open_connection(path)?;
    Ok((writer, reader))
}

/// Opens a connection in WAL mode. Commits do not fsync by themselves (`NORMAL`): with
/// `synchronous = full` hookline fsyncs the WAL itself before acknowledging (see `wal_sync`).
/// No connection checkpoints when it commits: a thread of its own does (see `checkpoint`).
fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4096; PRAGMA wal_autocheckpoint = 0;",
    )?;
    Ok(conn)
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert(
        &self,
        envelope: &Envelope,
        deliveries: Vec<NewDelivery>,
    ) -> Result<InsertOutcome, StoreError> {
        let row = EventRow::from(envelope);
        let ids = self.ids.clone();
        self.writer
            .write_durable("insert an event", move |tx| {
                insert::insert_event(tx, &mut ids.lock(), &row, &deliveries)
            })
            .await
    }

    async fn claim(
        &self,
        handler: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let handler = handler.to_owned();
        self.writer
            .write("claim deliveries", move |tx| {
                queue::claim_due(tx, &handler, limit, lease)
            })
            .await
    }

    async fn finish(
        &self,
        delivery_id: i64,
        attempt: AttemptRecord,
        next: NextStep,
    ) -> Result<(), StoreError> {
        self.writer
            .write("record an attempt", move |tx| {
                attempts::finish(tx, delivery_id, &attempt, next)?;
                // A delivery waiting for its retry still heads its key: nothing to let go.
                match next {
                    NextStep::RetryAt(_) => Ok(()),
                    _ => order::let_next_go_after(tx, delivery_id),
                }
            })
            .await
    }

    async fn release_leases(&self, which: Leases) -> Result<u64, StoreError> {
        // One process at a time uses the data directory: at its start nothing can be running.
        let before = match which {
            Leases::Expired => now_ms(),
            Leases::LeftAtStart => i64::MAX,
        };
        self.writer
            .write("release leases", move |tx| {
                queue::release_leases(tx, before)
            })
            .await
    }

    async fn expedite(&self, handler: &str) -> Result<u64, StoreError> {
        let handler = handler.to_owned();
        self.writer
            .write("expedite retries", move |tx| queue::expedite(tx, &handler))
            .await
    }

    async fn list_events(&self, filter: EventFilter) -> Result<Vec<EventSummary>, StoreError> {
        self.reader
            .read("list events", move |conn| reads::list_events(conn, &filter))
            .await
    }

    async fn event(&self, id: &str) -> Result<Option<EventDetail>, StoreError> {
        let id = id.to_owned();
        self.reader
            .read("read an event", move |conn| reads::event(conn, &id))
            .await
    }

    async fn dead_letters(&self, filter: EventFilter) -> Result<Vec<DeliveryInfo>, StoreError> {
        self.reader
            .read("list dead letters", move |conn| {
                reads::dead_letters(conn, &filter)
            })
            .await
    }

    async fn replay_delivery(&self, delivery_id: i64) -> Result<(), StoreError> {
        self.writer
            .write("replay a delivery", move |tx| {
                replay::replay_delivery(tx, delivery_id)
            })
            .await
    }

    async fn replay_event(&self, id: &str, routes: Vec<NewDelivery>) -> Result<u64, StoreError> {
        let id = id.to_owned();
        self.writer
            .write("replay an event", move |tx| {
                replay::replay_event(tx, &id, &routes)
            })
            .await
    }

    async fn replay_dead(&self, filter: EventFilter) -> Result<u64, StoreError> {
        self.writer
            .write("replay dead letters", move |tx| {
                replay::replay_dead(tx, &filter)
            })
            .await
    }

    async fn prune(
        &self,
        dedupe_window: Duration,
        retention: Duration,
    ) -> Result<PruneStats, StoreError> {
        prune::prune(&self.writer, &self.ids, dedupe_window, retention).await
    }

    async fn counts(&self) -> Result<DeliveryCounts, StoreError> {
        self.reader.read("count deliveries", reads::counts).await
    }

    async fn oldest_waiting(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.reader
            .read("find the oldest waiting delivery", reads::oldest_waiting)
            .await
    }

    async fn size(&self) -> Result<Option<u64>, StoreError> {
        let size = self.reader.read("read the inbox's size", reads::size).await;
        size.map(Some)
    }

    async fn activity(&self, since: DateTime<Utc>) -> Result<Vec<MinuteCount>, StoreError> {
        let since = since.timestamp_millis();
        self.reader
            .read("read the activity", move |conn| {
                reads::activity(conn, since)
            })
            .await
    }

    async fn event_types(&self) -> Result<Vec<EventType>, StoreError> {
        self.reader
            .read("list event types", reads::event_types)
            .await
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.reader.read("read the backlog", reads::backlog).await
    }

    async fn dead_letter_groups(
        &self,
        filter: EventFilter,
    ) -> Result<DeadLetterGroups, StoreError> {
        self.reader
            .read("count dead letters", move |conn| {
                reads::dead_letter_groups(conn, &filter)
            })
            .await
    }

    async fn blocked_keys(&self) -> Result<Vec<BlockedKey>, StoreError> {
        self.reader
            .read("list blocked keys", order::blocked_keys)
            .await
    }

    async fn skip_blocked(&self, delivery_id: i64) -> Result<(), StoreError> {
        self.writer
            .write("skip a blocked key's dead letter", move |tx| {
                order::skip_blocked(tx, delivery_id)
            })
            .await
    }

    async fn ordered_routes(&self) -> Result<Vec<OrderedRoute>, StoreError> {
        self.reader
            .read("read ordered routes", order::ordered_routes)
            .await
    }
}

#[cfg(test)]
mod tests;
