//! The embedded store: SQLite in WAL mode with group commit.
//!
//! One writer thread owns the write connection. Every write (intake, claims, attempt records,
//! replays, pruning) is a job sent to it; the thread takes all jobs waiting at that moment, runs
//! them in one transaction and commits once (if one job hits a database error, the batch is
//! rolled back and its jobs are committed one by one, so that the others do not fail with it).
//! With `synchronous=FULL` intake is answered after hookline's own fsync of the WAL, one per
//! batch rather than per request (see `WalSync`). Reads for the inspector go through a
//! separate connection, which WAL lets run beside the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tokio::sync::{mpsc, oneshot};

mod batch_thread;
mod wal_sync;

use self::wal_sync::{Completion, WalSync};
use super::Synchronous;
use super::{
    AttemptInfo, AttemptRecord, Claimed, DeliveryCounts, DeliveryInfo, DeliveryStart, EventDetail,
    EventFilter, EventSummary, InsertOutcome, NewDelivery, NextStep, PruneStats, Store, StoreError,
    StoredEvent,
};
use crate::envelope::Envelope;

/// Most jobs committed in one transaction; bounds the latency one batch adds to the next.
const MAX_BATCH: usize = 2048;
/// Jobs that may wait for the writer before senders wait too (back-pressure, bounded memory).
const QUEUE_DEPTH: usize = 8192;
/// fsyncs that may be in flight at once (see [`WalSync`]).
const FSYNC_THREADS: usize = 4;
/// WAL pages (4 KiB) after which a commit checkpoints: about 256 MiB of WAL on disk (more only
/// while a long inspector read keeps a checkpoint from completing).
const WAL_CHECKPOINT_PAGES: u32 = 65536;
/// Rows one pruning step deletes, so that pruning never holds the writer for long.
const PRUNE_CHUNK: i64 = 2000;

/// The condition of the partial index `deliveries_open`: deliveries that are pending, in flight
/// or dead. Delivered ones, nearly all of them, stay out of it: a direct hand-over (inserted in
/// flight, then delivered) adds an entry and removes it again in the same few pages, instead of
/// also writing into an ever-growing region of delivered entries, and the index stays as small as
/// the open work. SQLite uses a partial index only for queries that repeat its condition word for
/// word, so every query for open deliveries does (the test `open_queries_use_the_partial_index`
/// checks their plans).
macro_rules! open_delivery {
    () => {
        "state <> 'delivered'"
    };
}

/// The tables. `user_version` 2 replaced the full index `deliveries_due` by `deliveries_open`;
/// 3 added the `success_*` columns of `deliveries` (see [`finish_delivery`]), which
/// [`add_success_columns`] adds to an older inbox.
const SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    source       TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    provider_id  TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    decode_error TEXT,
    body         BLOB
);
CREATE INDEX IF NOT EXISTS events_received ON events(received_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY,
    event_seq   INTEGER NOT NULL,
    route       TEXT NOT NULL,
    handler     TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    due_at      INTEGER NOT NULL,
    lease_until INTEGER,
    since       INTEGER NOT NULL,
    last_error  TEXT,
    success_started_at  INTEGER,
    success_duration_ms INTEGER,
    success_http_status INTEGER,
    UNIQUE (event_seq, route)
);
DROP INDEX IF EXISTS deliveries_due;
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries(state, handler, due_at)
    WHERE ",
    open_delivery!(),
    ";
CREATE TABLE IF NOT EXISTS attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    http_status INTEGER,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts(delivery_id);
PRAGMA user_version = 3;
"
);

/// Due deliveries of a handler, oldest first: what a claim takes.
const SELECT_DUE: &str = concat!(
    "SELECT id FROM deliveries WHERE state = 'pending' AND handler = ?1 AND due_at <= ?2 AND ",
    open_delivery!(),
    " ORDER BY due_at LIMIT ?3"
);
/// Hands deliveries whose lease ended before `?1` back to the queue.
const RELEASE_LEASES: &str = concat!(
    "UPDATE deliveries SET state = 'pending', lease_until = NULL
     WHERE state = 'inflight' AND lease_until < ?1 AND ",
    open_delivery!()
);
/// Makes a handler's retries due now (`?1`).
const EXPEDITE: &str = concat!(
    "UPDATE deliveries SET due_at = ?1 WHERE state = 'pending' AND handler = ?2 AND due_at > ?1 AND ",
    open_delivery!()
);
/// Open deliveries per state.
const COUNT_OPEN: &str = concat!(
    "SELECT state, COUNT(*) FROM deliveries WHERE ",
    open_delivery!(),
    " GROUP BY state"
);
/// The filter clause of dead letters (over `deliveries d`).
const DEAD: &str = concat!("d.state = 'dead' AND d.", open_delivery!());

/// A write job as the writer thread sees it: run inside the batch transaction (perhaps again,
/// alone, if another job of its batch hit a database error), then completed with whether its
/// transaction committed (and, for durable jobs, was fsynced).
trait WriteJob: Completion {
    /// Runs the job's statements; `Err` when the database failed, which poisons the transaction.
    fn run(&mut self, tx: &Transaction<'_>) -> Result<(), String>;
    /// Whether its caller may be answered only once the commit is on disk (intake), rather than
    /// as soon as it is committed (bookkeeping that a crash may safely redo).
    fn durable(&self) -> bool;
}

/// A typed job: a closure and the channel its caller waits on.
///
/// The closure may run more than once, so it only borrows what it captured. Jobs fail for
/// reasons of their own (not found, conflict) before they write anything, so no savepoint is
/// needed to undo a failed job's writes: only database errors abort the batch.
struct Job<T, F> {
    work: F,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    durable: bool,
}

impl<T, F> WriteJob for Job<T, F>
where
    T: Send,
    F: FnMut(&Transaction<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, tx: &Transaction<'_>) -> Result<(), String> {
        let outcome = (self.work)(tx);
        let failed = match &outcome {
            Err(StoreError::Unavailable(e)) => Err(e.clone()),
            _ => Ok(()),
        };
        self.outcome = Some(outcome);
        failed
    }

    fn durable(&self) -> bool {
        self.durable
    }
}

impl<T, F> Completion for Job<T, F>
where
    T: Send,
    F: Send,
{
    fn complete(self: Box<Self>, commit: Result<(), String>) {
        let result = match (commit, self.outcome) {
            (Err(e), _) => Err(StoreError::Unavailable(e)),
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(StoreError::Unavailable("job did not run".into())),
        };
        // The caller may have given up waiting (request cancelled); nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// The SQLite inbox. Cheap to clone: clones share the writer thread and the read connection.
#[derive(Clone)]
pub struct SqliteStore {
    /// Queue of the writer thread.
    jobs: mpsc::Sender<Box<dyn WriteJob>>,
    /// Connection for inspector reads, beside the writer thanks to WAL.
    reader: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `hookline.db` in `dir` and starts the writer thread.
    pub fn open(dir: &Path, synchronous: Synchronous, max_size: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        let path = dir.join("hookline.db");
        let writer = open_connection(&path)?;
        writer.execute_batch(SCHEMA)?;
        add_success_columns(&writer)?;
        if max_size > 0 {
            let page_size: i64 = writer.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages = (max_size as i64 / page_size).max(1);
            writer.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
        }
        let reader = open_connection(&path)?;
        let thread_error =
            |e: std::io::Error| StoreError::Unavailable(format!("cannot start store threads: {e}"));
        let syncer = match synchronous {
            Synchronous::Full => {
                Some(WalSync::start(path.clone(), FSYNC_THREADS).map_err(thread_error)?)
            }
            Synchronous::Normal => None,
        };
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("hookline-store".into())
            .spawn(move || {
                batch_thread::run_as_batch();
                writer_loop(writer, queue, syncer)
            })
            .map_err(thread_error)?;
        Ok(SqliteStore {
            jobs,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// The database file inside a data directory.
    pub fn db_path(dir: &Path) -> PathBuf {
        dir.join("hookline.db")
    }

    /// Sends a job to the writer and waits for its committed result.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(work, false).await
    }

    /// Sends a job to the writer and waits until its result is committed and, with
    /// `synchronous = full`, on disk: what intake waits for before it acknowledges.
    async fn write_durable<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(work, true).await
    }

    async fn submit<T, F>(&self, work: F, durable: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job = Box::new(Job {
            work,
            outcome: None,
            reply,
            durable,
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        result.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a read on the reader connection off the async runtime.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader
                .lock()
                .map_err(|_| StoreError::Unavailable("reader lock poisoned".into()))?;
            work(&conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }
}

/// Opens a connection in WAL mode. Commits do not fsync by themselves (`NORMAL`): with
/// `synchronous = full` hookline fsyncs the WAL itself before acknowledging (see [`WalSync`]).
///
/// A checkpoint runs inside the commit that crosses [`WAL_CHECKPOINT_PAGES`] and stalls that
/// batch, so they are spaced far apart: with 64 connections only the requests in flight at a
/// stall wait, and fewer stalls keep them out of the p99 (README, "Performance").
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4096;
         PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES};"
    ))?;
    Ok(conn)
}

/// Adds the columns that hold a delivery's successful attempt to a `deliveries` table created
/// before they existed (`CREATE TABLE IF NOT EXISTS` leaves such a table as it is).
fn add_success_columns(conn: &Connection) -> Result<(), StoreError> {
    let present: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('deliveries') WHERE name = 'success_started_at'",
        [],
        |r| r.get(0),
    )?;
    if !present {
        conn.execute_batch(
            "ALTER TABLE deliveries ADD COLUMN success_started_at INTEGER;
             ALTER TABLE deliveries ADD COLUMN success_duration_ms INTEGER;
             ALTER TABLE deliveries ADD COLUMN success_http_status INTEGER;",
        )?;
    }
    Ok(())
}

/// The writer thread: batch, run, commit, then reply or hand durable jobs to the syncers, until
/// every sender is gone.
fn writer_loop(
    mut conn: Connection,
    mut queue: mpsc::Receiver<Box<dyn WriteJob>>,
    syncer: Option<WalSync<dyn WriteJob>>,
) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        crate::metrics::commit_batch(batch.len());
        match commit_together(&mut conn, &mut batch) {
            Err(BatchError::Job(e)) if batch.len() > 1 => {
                // One job's database error must not fail the others: commit each on its own.
                tracing::warn!(error = %e, jobs = batch.len(), "a job failed; committing the batch's jobs one by one");
                for mut job in batch.drain(..) {
                    let commit = commit_together(&mut conn, std::slice::from_mut(&mut job));
                    complete(vec![job], commit.map_err(String::from), syncer.as_ref());
                }
            }
            commit => complete(
                std::mem::take(&mut batch),
                commit.map_err(String::from),
                syncer.as_ref(),
            ),
        }
    }
}

/// Why a batch did not commit: because of one job (the others may succeed alone), or because
/// the transaction itself could not begin or commit (nothing would).
enum BatchError {
    /// A job's statement failed.
    Job(String),
    /// `BEGIN` or `COMMIT` failed.
    Transaction(String),
}

impl From<BatchError> for String {
    fn from(e: BatchError) -> String {
        match e {
            BatchError::Job(e) | BatchError::Transaction(e) => e,
        }
    }
}

/// Runs jobs in one transaction and commits it, or rolls it back on the first database error.
fn commit_together(
    conn: &mut Connection,
    jobs: &mut [Box<dyn WriteJob>],
) -> Result<(), BatchError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| BatchError::Transaction(e.to_string()))?;
    for job in jobs.iter_mut() {
        job.run(&tx).map_err(BatchError::Job)?;
    }
    tx.commit()
        .map_err(|e| BatchError::Transaction(e.to_string()))
}

/// Answers the jobs of a transaction: durable ones after the next WAL fsync, the rest now.
fn complete(
    jobs: Vec<Box<dyn WriteJob>>,
    commit: Result<(), String>,
    syncer: Option<&WalSync<dyn WriteJob>>,
) {
    match (&commit, syncer) {
        (Ok(()), Some(syncer)) => {
            let (durable, done): (Vec<_>, Vec<_>) = jobs.into_iter().partition(|j| j.durable());
            syncer.after_commit(durable);
            done.into_iter().for_each(|job| job.complete(Ok(())));
        }
        (Err(e), _) => {
            tracing::error!(error = %e, jobs = jobs.len(), "store commit failed");
            jobs.into_iter()
                .for_each(|job| job.complete(commit.clone()));
        }
        (Ok(()), None) => jobs.into_iter().for_each(|job| job.complete(Ok(()))),
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// What intake writes for one event: the envelope's columns, owned so that the job can move to
/// the writer thread without cloning the decoded event.
struct EventRow {
    id: String,
    source: &'static str,
    endpoint: String,
    provider_id: String,
    event_type: String,
    received_at: i64,
    decode_error: Option<String>,
    body: Bytes,
}

impl From<&Envelope> for EventRow {
    fn from(envelope: &Envelope) -> Self {
        EventRow {
            id: envelope.id.clone(),
            source: envelope.source.as_str(),
            endpoint: envelope.endpoint.clone(),
            provider_id: envelope.provider_id.clone(),
            event_type: envelope.event_type.clone(),
            received_at: envelope.received_at.timestamp_millis(),
            decode_error: envelope.decode_error.clone(),
            body: envelope.body.clone(),
        }
    }
}

/// Writes the event and its deliveries. No `RETURNING` here: it would make SQLite keep a
/// statement journal (a copy of every page the statement touches) for each insert; the row ids
/// come from `last_insert_rowid` instead.
fn insert_event(
    tx: &Transaction<'_>,
    envelope: &EventRow,
    deliveries: &[NewDelivery],
) -> Result<InsertOutcome, StoreError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO events (id, source, endpoint, provider_id, event_type, received_at, decode_error, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            envelope.id,
            envelope.source,
            envelope.endpoint,
            envelope.provider_id,
            envelope.event_type,
            envelope.received_at,
            envelope.decode_error,
            envelope.body.as_ref(),
        ])?;
    if inserted == 0 {
        return Ok(InsertOutcome::Duplicate);
    }
    let seq = tx.last_insert_rowid();
    let now = now_ms();
    let mut stmt = tx.prepare_cached(
        "INSERT INTO deliveries (event_seq, route, handler, state, attempts, due_at, lease_until, since,
             success_started_at, success_duration_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6, ?8, ?9)",
    )?;
    let mut delivery_ids = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        // A delivery handed over directly starts as its first attempt, exactly as a claim would;
        // one done at intake is written as finished by that attempt, exactly as its record would.
        let (state, attempts, lease_until, success) = match delivery.start {
            DeliveryStart::Pending => ("pending", 0, None, None),
            DeliveryStart::Claimed(lease) => {
                ("inflight", 1, Some(now + lease.as_millis() as i64), None)
            }
            DeliveryStart::Delivered(success) => ("delivered", 1, None, Some(success)),
        };
        stmt.execute(params![
            seq,
            delivery.route,
            delivery.handler,
            state,
            attempts,
            now,
            lease_until,
            success.map(|s| s.started_at.timestamp_millis()),
            success.map(|s| s.duration.as_millis() as i64),
        ])?;
        delivery_ids.push(tx.last_insert_rowid());
    }
    Ok(InsertOutcome::Stored { delivery_ids })
}

/// The columns [`stored_from_row`] reads, in order.
const EVENT_COLUMNS: &str =
    "e.source, e.endpoint, e.provider_id, e.event_type, e.received_at, e.decode_error, e.body";

/// Reads an event selected with [`EVENT_COLUMNS`] at `offset`.
fn stored_from_row(row: &rusqlite::Row<'_>, offset: usize) -> rusqlite::Result<StoredEvent> {
    let body: Option<Vec<u8>> = row.get(offset + 6)?;
    Ok(StoredEvent {
        source: row.get(offset)?,
        endpoint: row.get(offset + 1)?,
        provider_id: row.get(offset + 2)?,
        event_type: row.get(offset + 3)?,
        received_at: from_ms(row.get(offset + 4)?),
        decode_error: row.get(offset + 5)?,
        body: Bytes::from(body.unwrap_or_default()),
    })
}

/// Claims up to `limit` due deliveries of `handler`: picks them, marks each in flight, reads
/// each with its event. Every statement is cached and touches one row at a time, so a claim
/// neither re-prepares SQL nor needs a statement journal.
fn claim_due(
    tx: &Transaction<'_>,
    handler: &str,
    limit: usize,
    lease: Duration,
) -> Result<Vec<Claimed>, StoreError> {
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
        "SELECT d.id, d.route, d.attempts, d.since, {EVENT_COLUMNS}
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
                event: stored_from_row(row, 4)?,
            })
        })?);
    }
    Ok(claimed)
}

/// Records an attempt and what comes next. A successful attempt, by far the most common one,
/// is kept in the delivery's own row (the `success_*` columns) rather than as a row of
/// `attempts`: that spares every delivered event an insert into two more B-trees (the table
/// and its index), which were ~12 % of the writer's `perf` samples. Failed attempts, which need
/// their status and error, get their `attempts` row; [`attempts_of`] reads both, and
/// [`reset_deliveries`] moves a success into `attempts` before a replay starts a new round.
fn finish_delivery(
    tx: &Transaction<'_>,
    delivery_id: i64,
    attempt: &AttemptRecord,
    next: NextStep,
) -> Result<(), StoreError> {
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

/// SQL fragment and parameters for an [`EventFilter`] over `events e` (and `deliveries d` when
/// `with_delivery` is set).
struct FilterSql {
    clauses: Vec<String>,
    params: Vec<rusqlite::types::Value>,
}

impl FilterSql {
    fn new(filter: &EventFilter, with_delivery: bool) -> Result<FilterSql, StoreError> {
        use rusqlite::types::Value;
        let mut sql = FilterSql {
            clauses: Vec::new(),
            params: Vec::new(),
        };
        if let Some(source) = &filter.source {
            sql.push("e.source = ?", Value::Text(source.clone()));
        }
        if let Some(event_type) = &filter.event_type {
            sql.push("e.event_type = ?", Value::Text(event_type.clone()));
        }
        if let Some(since) = filter.since {
            sql.push(
                "e.received_at >= ?",
                Value::Integer(since.timestamp_millis()),
            );
        }
        if let Some(until) = filter.until {
            sql.push(
                "e.received_at < ?",
                Value::Integer(until.timestamp_millis()),
            );
        }
        if let Some(before) = filter.before {
            sql.push("e.seq < ?", Value::Integer(before));
        }
        if let Some(route) = &filter.route {
            if !with_delivery {
                return Err(StoreError::Conflict(
                    "filter by route applies to dead letters only".into(),
                ));
            }
            sql.push("d.route = ?", Value::Text(route.clone()));
        }
        if let Some(status) = &filter.status {
            if with_delivery {
                return Err(StoreError::Conflict(
                    "filter by status applies to events only".into(),
                ));
            }
            sql.clauses.push(status_clause(status)?.into());
        }
        Ok(sql)
    }

    fn push(&mut self, clause: &str, value: rusqlite::types::Value) {
        self.clauses.push(clause.into());
        self.params.push(value);
    }

    fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// The SQL expression of an event's status, derived from its deliveries.
const STATUS_SQL: &str = "CASE
    WHEN EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq AND x.state = 'dead') THEN 'dead'
    WHEN EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq AND x.state IN ('pending', 'inflight')) THEN 'pending'
    WHEN EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq) THEN 'delivered'
    ELSE 'unrouted' END";

fn status_clause(status: &str) -> Result<&'static str, StoreError> {
    Ok(match status {
        "dead" => "EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq AND x.state = 'dead')",
        "pending" => "EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq AND x.state IN ('pending', 'inflight'))",
        "delivered" => "EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq) AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq AND x.state <> 'delivered')",
        "unrouted" => "NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq)",
        "undecodable" => "e.decode_error IS NOT NULL",
        other => {
            return Err(StoreError::Conflict(format!(
                "unknown status {other:?} (expected pending, delivered, dead, unrouted or undecodable)"
            )))
        }
    })
}

/// Runs `select` narrowed by `sql`, newest (highest `order_by`) first, up to the filter's limit.
fn select_filtered<T>(
    conn: &Connection,
    select: &str,
    sql: &FilterSql,
    order_by: &str,
    filter: &EventFilter,
    from_row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let query = format!(
        "{select} {} ORDER BY {order_by} DESC LIMIT {}",
        sql.where_sql(),
        limit_of(filter)
    );
    let rows = conn
        .prepare(&query)?
        .query_map(rusqlite::params_from_iter(sql.params.iter()), from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

fn limit_of(filter: &EventFilter) -> i64 {
    i64::from(filter.limit.unwrap_or(100).clamp(1, 1000))
}

fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventSummary> {
    Ok(EventSummary {
        seq: row.get(0)?,
        id: row.get(1)?,
        source: row.get(2)?,
        endpoint: row.get(3)?,
        provider_id: row.get(4)?,
        event_type: row.get(5)?,
        received_at: from_ms(row.get(6)?),
        decode_error: row.get(7)?,
        status: row.get(8)?,
    })
}

fn summary_select() -> String {
    format!(
        "SELECT e.seq, e.id, e.source, e.endpoint, e.provider_id, e.event_type, e.received_at, e.decode_error, {STATUS_SQL} FROM events e"
    )
}

fn delivery_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryInfo> {
    Ok(DeliveryInfo {
        id: row.get(0)?,
        event_id: row.get(1)?,
        route: row.get(2)?,
        handler: row.get(3)?,
        state: row.get(4)?,
        attempts: row.get(5)?,
        due_at: from_ms(row.get(6)?),
        last_error: row.get(7)?,
        history: Vec::new(),
    })
}

const DELIVERY_SELECT: &str =
    "SELECT d.id, e.id, d.route, d.handler, d.state, d.attempts, d.due_at, d.last_error
     FROM deliveries d JOIN events e ON e.seq = d.event_seq";

/// A delivery's attempts in order: its `attempts` rows, then the success kept in its own row
/// (see [`finish_delivery`]), which is always the last attempt of its round.
fn attempts_of(conn: &Connection, delivery_id: i64) -> Result<Vec<AttemptInfo>, StoreError> {
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

fn load_event(conn: &Connection, id: &str) -> Result<Option<EventDetail>, StoreError> {
    let found = conn
        .prepare_cached(&format!("{} WHERE e.id = ?1", summary_select()))?
        .query_row([id], summary_from_row)
        .optional()?;
    let Some(summary) = found else {
        return Ok(None);
    };
    let body: Option<Vec<u8>> = conn.query_row(
        "SELECT body FROM events WHERE seq = ?1",
        [summary.seq],
        |r| r.get(0),
    )?;
    let mut deliveries: Vec<DeliveryInfo> = conn
        .prepare_cached(&format!(
            "{DELIVERY_SELECT} WHERE d.event_seq = ?1 ORDER BY d.id"
        ))?
        .query_map([summary.seq], delivery_from_row)?
        .collect::<Result<_, _>>()?;
    for delivery in &mut deliveries {
        delivery.history = attempts_of(conn, delivery.id)?;
    }
    Ok(Some(EventDetail {
        summary,
        body: body.map(|b| String::from_utf8_lossy(&b).into_owned()),
        deliveries,
    }))
}

/// Makes deliveries matching `condition` due now with a fresh budget; returns how many. The
/// success of a delivered one moves from its row into `attempts` first, so that its history
/// keeps it and the next round can record its own.
fn reset_deliveries(
    tx: &Transaction<'_>,
    condition: &str,
    params: &[rusqlite::types::Value],
) -> Result<u64, StoreError> {
    let now = now_ms();
    let chosen = format!(
        "state <> 'inflight' AND id IN (SELECT d.id FROM deliveries d JOIN events e ON e.seq = d.event_seq {condition})"
    );
    let params = rusqlite::params_from_iter(params.iter());
    tx.execute(
        &format!(
            "INSERT INTO attempts (delivery_id, started_at, duration_ms, outcome, http_status)
             SELECT id, success_started_at, success_duration_ms, 'delivered', success_http_status
             FROM deliveries
             WHERE success_started_at IS NOT NULL AND {chosen} ORDER BY id"
        ),
        params.clone(),
    )?;
    let changed = tx.execute(
        &format!(
            "UPDATE deliveries SET state = 'pending', due_at = {now}, since = {now}, attempts = 0,
                 lease_until = NULL, success_started_at = NULL, success_duration_ms = NULL,
                 success_http_status = NULL
             WHERE {chosen}"
        ),
        params,
    )?;
    Ok(changed as u64)
}

fn replay_event_tx(
    tx: &Transaction<'_>,
    id: &str,
    routes: &[NewDelivery],
) -> Result<u64, StoreError> {
    let row: Option<(i64, bool)> = tx
        .query_row(
            "SELECT seq, body IS NOT NULL FROM events WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((seq, has_body)) = row else {
        return Err(StoreError::NotFound(format!("event {id}")));
    };
    if !has_body {
        return Err(StoreError::Conflict(format!(
            "event {id} is past its retention: its body is no longer stored"
        )));
    }
    let now = now_ms();
    let mut stmt = tx.prepare_cached(
        "INSERT INTO deliveries (event_seq, route, handler, state, due_at, since)
         VALUES (?1, ?2, ?3, 'pending', ?4, ?4) ON CONFLICT (event_seq, route) DO NOTHING",
    )?;
    let mut created = 0u64;
    for route in routes {
        created += stmt.execute(params![seq, route.route, route.handler, now])? as u64;
    }
    let reset = reset_deliveries(
        tx,
        "WHERE d.event_seq = ? AND d.state <> 'pending'",
        &[rusqlite::types::Value::Integer(seq)],
    )?;
    Ok(created + reset)
}

fn prune_tx(
    tx: &Transaction<'_>,
    delete_before: i64,
    strip_before: i64,
) -> Result<PruneStats, StoreError> {
    const UNFINISHED: &str = "EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = events.seq AND x.state IN ('pending', 'inflight'))";
    let seqs: Vec<i64> = tx
        .prepare_cached(&format!(
            "SELECT seq FROM events WHERE received_at < ?1 AND NOT {UNFINISHED} LIMIT ?2"
        ))?
        .query_map(params![delete_before, PRUNE_CHUNK], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for seq in &seqs {
        tx.execute(
            "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_seq = ?1)",
            [seq],
        )?;
        tx.execute("DELETE FROM deliveries WHERE event_seq = ?1", [seq])?;
        tx.execute("DELETE FROM events WHERE seq = ?1", [seq])?;
    }
    let stripped = tx.execute(
        &format!(
            "UPDATE events SET body = NULL WHERE seq IN (SELECT seq FROM events
             WHERE received_at < ?1 AND body IS NOT NULL AND NOT {UNFINISHED} LIMIT ?2)"
        ),
        params![strip_before, PRUNE_CHUNK],
    )?;
    Ok(PruneStats {
        events_deleted: seqs.len() as u64,
        bodies_dropped: stripped as u64,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert(
        &self,
        envelope: &Envelope,
        deliveries: Vec<NewDelivery>,
    ) -> Result<InsertOutcome, StoreError> {
        let row = EventRow::from(envelope);
        self.write_durable(move |tx| insert_event(tx, &row, &deliveries))
            .await
    }

    async fn claim(
        &self,
        handler: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let handler = handler.to_owned();
        self.write(move |tx| claim_due(tx, &handler, limit, lease))
            .await
    }

    async fn finish(
        &self,
        delivery_id: i64,
        attempt: AttemptRecord,
        next: NextStep,
    ) -> Result<(), StoreError> {
        self.write(move |tx| finish_delivery(tx, delivery_id, &attempt, next))
            .await
    }

    async fn release_leases(&self, expired_only: bool) -> Result<u64, StoreError> {
        let before = if expired_only { now_ms() } else { i64::MAX };
        self.write(move |tx| {
            let n = tx.execute(RELEASE_LEASES, [before])?;
            Ok(n as u64)
        })
        .await
    }

    async fn expedite(&self, handler: &str) -> Result<u64, StoreError> {
        let handler = handler.to_owned();
        self.write(move |tx| {
            let now = now_ms();
            let n = tx
                .prepare_cached(EXPEDITE)?
                .execute(params![now, handler])?;
            Ok(n as u64)
        })
        .await
    }

    async fn list_events(&self, filter: EventFilter) -> Result<Vec<EventSummary>, StoreError> {
        self.read(move |conn| {
            let sql = FilterSql::new(&filter, false)?;
            select_filtered(
                conn,
                &summary_select(),
                &sql,
                "e.seq",
                &filter,
                summary_from_row,
            )
        })
        .await
    }

    async fn event(&self, id: &str) -> Result<Option<EventDetail>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| load_event(conn, &id)).await
    }

    async fn dead_letters(&self, filter: EventFilter) -> Result<Vec<DeliveryInfo>, StoreError> {
        self.read(move |conn| {
            let mut sql = FilterSql::new(&filter, true)?;
            sql.clauses.push(DEAD.into());
            select_filtered(
                conn,
                DELIVERY_SELECT,
                &sql,
                "d.id",
                &filter,
                delivery_from_row,
            )
        })
        .await
    }

    async fn replay_delivery(&self, delivery_id: i64) -> Result<(), StoreError> {
        self.write(move |tx| {
            let state: Option<String> = tx
                .query_row(
                    "SELECT d.state FROM deliveries d JOIN events e ON e.seq = d.event_seq
                     WHERE d.id = ?1 AND e.body IS NOT NULL",
                    [delivery_id],
                    |r| r.get(0),
                )
                .optional()?;
            match state.as_deref() {
                None => Err(StoreError::NotFound(format!(
                    "delivery {delivery_id} (or its event body)"
                ))),
                Some("inflight") => Err(StoreError::Conflict(format!(
                    "delivery {delivery_id} is being attempted right now"
                ))),
                Some(_) => {
                    reset_deliveries(
                        tx,
                        "WHERE d.id = ?",
                        &[rusqlite::types::Value::Integer(delivery_id)],
                    )?;
                    Ok(())
                }
            }
        })
        .await
    }

    async fn replay_event(&self, id: &str, routes: Vec<NewDelivery>) -> Result<u64, StoreError> {
        let id = id.to_owned();
        self.write(move |tx| replay_event_tx(tx, &id, &routes))
            .await
    }

    async fn replay_dead(&self, filter: EventFilter) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let mut sql = FilterSql::new(&filter, true)?;
            sql.clauses.push(DEAD.into());
            sql.clauses.push("e.body IS NOT NULL".into());
            reset_deliveries(tx, &sql.where_sql(), &sql.params)
        })
        .await
    }

    async fn prune(
        &self,
        dedupe_window: Duration,
        retention: Duration,
    ) -> Result<PruneStats, StoreError> {
        let now = now_ms();
        let keep_ids = dedupe_window.max(retention).as_millis() as i64;
        let keep_bodies = retention.as_millis() as i64;
        let mut total = PruneStats::default();
        loop {
            let step = self
                .write(move |tx| prune_tx(tx, now - keep_ids, now - keep_bodies))
                .await?;
            total.events_deleted += step.events_deleted;
            total.bodies_dropped += step.bodies_dropped;
            if step.events_deleted < PRUNE_CHUNK as u64 && step.bodies_dropped < PRUNE_CHUNK as u64
            {
                return Ok(total);
            }
        }
    }

    async fn counts(&self) -> Result<DeliveryCounts, StoreError> {
        self.read(|conn| {
            let mut counts = DeliveryCounts::default();
            let mut stmt = conn.prepare_cached(COUNT_OPEN)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (state, n) = row?;
                let n = n.max(0) as u64;
                match state.as_str() {
                    "pending" => counts.pending = n,
                    "inflight" => counts.inflight = n,
                    _ => counts.dead = n,
                }
            }
            Ok(counts)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration as Age;

    fn envelope(provider_id: &str, age: Age) -> Envelope {
        crate::envelope::testing::envelope(
            "chatbrick",
            "default",
            provider_id,
            Utc::now() - age,
            br#"{"type":"store.created","data":{"store":{"id":"s1"}}}"#,
        )
    }

    fn to(handler: &str) -> Vec<NewDelivery> {
        vec![NewDelivery {
            route: handler.into(),
            handler: handler.into(),
            start: DeliveryStart::Pending,
        }]
    }

    fn open(dir: &Path) -> SqliteStore {
        SqliteStore::open(dir, Synchronous::Full, 0).unwrap()
    }

    async fn deliver_all(store: &SqliteStore, handler: &str) {
        for claimed in store
            .claim(handler, 100, Duration::from_secs(60))
            .await
            .unwrap()
        {
            let attempt = AttemptRecord {
                started_at: Utc::now(),
                duration: Duration::from_millis(1),
                http_status: Some(200),
                error: None,
            };
            store
                .finish(claimed.delivery_id, attempt, NextStep::Delivered)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn duplicates_are_detected_even_within_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let (first, second) = (envelope("m1", Age::zero()), envelope("m1", Age::zero()));
        let (a, b) = tokio::join!(
            store.insert(&first, to("log")),
            store.insert(&second, to("log")),
        );
        let mut outcomes = [a.unwrap(), b.unwrap()];
        outcomes.sort_by_key(|o| *o == InsertOutcome::Duplicate);
        assert!(matches!(outcomes[0], InsertOutcome::Stored { .. }));
        assert_eq!(outcomes[1], InsertOutcome::Duplicate);
        assert_eq!(store.counts().await.unwrap().pending, 1);
    }

    #[tokio::test]
    async fn committed_events_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let store = open(dir.path());
            let e = envelope("m1", Age::zero());
            store.insert(&e, to("log")).await.unwrap();
            e.id
        };
        let store = open(dir.path());
        let detail = store.event(&id).await.unwrap().expect("still there");
        assert_eq!(detail.summary.status, "pending");
        assert!(detail.body.unwrap().contains("store.created"));
        assert_eq!(
            store
                .insert(&envelope("m1", Age::zero()), to("log"))
                .await
                .unwrap(),
            InsertOutcome::Duplicate
        );
    }

    #[tokio::test]
    async fn prune_keeps_ids_for_dedupe_drops_bodies_and_spares_unfinished_work() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let day = Duration::from_secs(24 * 3600);
        let ancient = envelope("ancient", Age::days(10));
        let old = envelope("old", Age::days(3));
        let stuck = envelope("stuck", Age::days(10));
        let fresh = envelope("fresh", Age::zero());
        for e in [&ancient, &old, &fresh] {
            store.insert(e, to("log")).await.unwrap();
        }
        deliver_all(&store, "log").await;
        store.insert(&stuck, to("other")).await.unwrap();

        let stats = store.prune(7 * day, day).await.unwrap();
        assert_eq!(
            stats.events_deleted, 1,
            "only the finished event past the dedupe window"
        );
        assert!(store.event(&ancient.id).await.unwrap().is_none());
        let old_detail = store.event(&old.id).await.unwrap().unwrap();
        assert!(old_detail.body.is_none(), "body dropped after retention");
        assert_eq!(
            store.insert(&old, to("log")).await.unwrap(),
            InsertOutcome::Duplicate,
            "its id is still remembered"
        );
        assert!(store
            .event(&fresh.id)
            .await
            .unwrap()
            .unwrap()
            .body
            .is_some());
        let stuck_detail = store.event(&stuck.id).await.unwrap().unwrap();
        assert!(stuck_detail.body.is_some(), "pending work keeps its body");
        let err = store.replay_event(&old.id, Vec::new()).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    }

    #[tokio::test]
    async fn expired_leases_are_released_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store
            .insert(&envelope("a", Age::zero()), to("h"))
            .await
            .unwrap();
        store
            .insert(&envelope("b", Age::zero()), to("g"))
            .await
            .unwrap();
        assert_eq!(store.claim("h", 10, Duration::ZERO).await.unwrap().len(), 1);
        assert_eq!(
            store
                .claim("g", 10, Duration::from_secs(600))
                .await
                .unwrap()
                .len(),
            1
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(store.release_leases(true).await.unwrap(), 1);
        let again = store.claim("h", 10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempt, 2, "the lost attempt counts");
        assert!(store
            .claim("g", 10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.release_leases(false).await.unwrap(), 2);
    }

    #[test]
    fn open_queries_use_the_partial_index() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()));
        let conn = open_connection(&SqliteStore::db_path(dir.path())).unwrap();
        let dead_letters = format!("{DELIVERY_SELECT} WHERE {DEAD} ORDER BY d.id DESC LIMIT 100");
        for sql in [
            SELECT_DUE,
            RELEASE_LEASES,
            EXPEDITE,
            COUNT_OPEN,
            &dead_letters,
        ] {
            let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            // Unbound parameters are NULL, which does not change the plan.
            let mut rows = explain.raw_query();
            let mut plan: Vec<String> = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                plan.push(row.get(3).unwrap());
            }
            assert!(
                plan.iter().any(|step| step.contains("deliveries_open")),
                "{sql}\n{plan:?}"
            );
        }
    }

    #[test]
    fn opening_an_older_inbox_replaces_the_full_delivery_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = SqliteStore::db_path(dir.path());
        {
            let conn = open_connection(&path).unwrap();
            conn.execute_batch(&SCHEMA.replace("DROP INDEX IF EXISTS deliveries_due;", ""))
                .unwrap();
            conn.execute_batch(
                "CREATE INDEX deliveries_due ON deliveries(state, handler, due_at);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        drop(open(dir.path()));
        let conn = open_connection(&path).unwrap();
        let indexes: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries'",
            )
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            indexes.contains(&"deliveries_open".to_string()),
            "{indexes:?}"
        );
        assert!(
            !indexes.contains(&"deliveries_due".to_string()),
            "{indexes:?}"
        );
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 3);
    }

    fn attempt(status: u16, error: Option<&str>) -> AttemptRecord {
        AttemptRecord {
            started_at: Utc::now(),
            duration: Duration::from_millis(3),
            http_status: Some(status),
            error: error.map(str::to_owned),
        }
    }

    /// Claims the one due delivery of `h` and records `record` with `next` for it.
    async fn attempt_once(store: &SqliteStore, record: AttemptRecord, next: NextStep) -> i64 {
        let claimed = store.claim("h", 1, Duration::from_secs(60)).await.unwrap();
        assert_eq!(claimed.len(), 1, "one due delivery");
        let id = claimed[0].delivery_id;
        store.finish(id, record, next).await.unwrap();
        id
    }

    fn outcomes(detail: &EventDetail) -> Vec<(String, Option<u16>)> {
        detail.deliveries[0]
            .history
            .iter()
            .map(|a| (a.outcome.clone(), a.http_status))
            .collect()
    }

    fn attempt_rows(dir: &Path) -> i64 {
        let conn = open_connection(&SqliteStore::db_path(dir)).unwrap();
        conn.query_row("SELECT COUNT(*) FROM attempts", [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_delivery_done_at_intake_is_committed_delivered_with_its_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let e = envelope("m1", Age::zero());
        let started_at = Utc.timestamp_millis_opt(1_700_000_000_123).unwrap();
        let done = NewDelivery {
            route: "log".into(),
            handler: "log".into(),
            start: DeliveryStart::Delivered(crate::store::SuccessRecord {
                started_at,
                duration: Duration::from_millis(3),
            }),
        };
        store.insert(&e, vec![done]).await.unwrap();

        let detail = store.event(&e.id).await.unwrap().unwrap();
        assert_eq!(detail.summary.status, "delivered");
        let delivery = &detail.deliveries[0];
        assert_eq!(
            (delivery.state.as_str(), delivery.attempts),
            ("delivered", 1)
        );
        assert_eq!(delivery.history.len(), 1);
        let attempt = &delivery.history[0];
        assert_eq!(
            (
                attempt.outcome.as_str(),
                attempt.started_at,
                attempt.duration_ms
            ),
            ("delivered", started_at, 3)
        );
        assert_eq!(attempt_rows(dir.path()), 0, "kept in the delivery's row");
        assert_eq!(store.counts().await.unwrap(), DeliveryCounts::default());
        let due = store
            .claim("log", 10, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(due.is_empty(), "nothing left to claim");
    }

    #[tokio::test]
    async fn a_success_is_kept_in_its_delivery_and_shown_last_in_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let e = envelope("m1", Age::zero());
        store.insert(&e, to("h")).await.unwrap();
        let failed = attempt(503, Some("busy"));
        attempt_once(&store, failed, NextStep::RetryAt(Utc::now())).await;
        let id = attempt_once(&store, attempt(200, None), NextStep::Delivered).await;

        let detail = store.event(&e.id).await.unwrap().unwrap();
        let expected = vec![
            ("retry".to_string(), Some(503)),
            ("delivered".to_string(), Some(200)),
        ];
        assert_eq!(outcomes(&detail), expected);
        assert_eq!(detail.deliveries[0].state, "delivered");
        assert_eq!(detail.deliveries[0].last_error, None);
        assert_eq!(attempt_rows(dir.path()), 1, "only the failure has a row");

        // A replay moves the success into `attempts`, and the next round records its own.
        store.replay_delivery(id).await.unwrap();
        let replayed = store.event(&e.id).await.unwrap().unwrap();
        assert_eq!(
            outcomes(&replayed),
            expected,
            "history kept across the replay"
        );
        assert_eq!(replayed.deliveries[0].state, "pending");
        attempt_once(&store, attempt(202, None), NextStep::Delivered).await;
        let detail = store.event(&e.id).await.unwrap().unwrap();
        assert_eq!(
            outcomes(&detail),
            vec![
                ("retry".to_string(), Some(503)),
                ("delivered".to_string(), Some(200)),
                ("delivered".to_string(), Some(202)),
            ]
        );
        assert_eq!(attempt_rows(dir.path()), 2);
    }

    #[tokio::test]
    async fn opening_an_inbox_without_success_columns_adds_them_and_keeps_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = SqliteStore::db_path(dir.path());
        let e = envelope("m1", Age::zero());
        {
            let store = open(dir.path());
            store.insert(&e, to("h")).await.unwrap();
        }
        {
            // As version 2 left it: the success in `attempts`, no `success_*` columns.
            let conn = open_connection(&path).unwrap();
            conn.execute_batch(
                "UPDATE deliveries SET state = 'delivered';
                 INSERT INTO attempts (delivery_id, started_at, duration_ms, outcome, http_status)
                     SELECT id, 0, 5, 'delivered', 200 FROM deliveries;
                 ALTER TABLE deliveries DROP COLUMN success_started_at;
                 ALTER TABLE deliveries DROP COLUMN success_duration_ms;
                 ALTER TABLE deliveries DROP COLUMN success_http_status;
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        }
        let store = open(dir.path());
        let detail = store.event(&e.id).await.unwrap().unwrap();
        assert_eq!(
            outcomes(&detail),
            vec![("delivered".to_string(), Some(200))]
        );
        let id = detail.deliveries[0].id;
        store.replay_delivery(id).await.unwrap();
        attempt_once(&store, attempt(200, None), NextStep::Delivered).await;
        let detail = store.event(&e.id).await.unwrap().unwrap();
        assert_eq!(detail.deliveries[0].history.len(), 2);
    }

    #[tokio::test]
    async fn claimed_events_are_read_back_as_they_were_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let original = envelope("m1", Age::zero());
        store.insert(&original, to("log")).await.unwrap();
        let claimed = store
            .claim("log", 1, Duration::from_secs(60))
            .await
            .unwrap();
        let stored = &claimed[0].event;
        assert_eq!(stored.source, original.source.as_str());
        assert_eq!(stored.provider_id, original.provider_id);
        assert_eq!(stored.event_type, "store.created");
        assert_eq!(
            stored.received_at.timestamp_millis(),
            original.received_at.timestamp_millis()
        );
        assert_eq!(stored.body, original.body);
    }
}
