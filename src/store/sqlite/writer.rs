//! The writer thread and group commit.
//!
//! One thread owns the write connection. Every write (intake, claims, attempt records, replays,
//! pruning) is a job sent to it; the thread takes all jobs waiting at that moment, runs them in
//! one transaction and commits once. If one job hits a database error, the batch is rolled back
//! and its jobs are committed one by one, so that the others do not fail with it. With
//! `synchronous = full`, durable jobs (intake) are answered after hookline's own fsync of the
//! WAL, one per batch rather than per request (see [`WalSync`]). A small batch of intake may
//! wait a moment for more before it commits (see [`Gather`]). Between batches the thread does
//! its [`Upkeep`].

use std::ops::DerefMut;
use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::batch_thread;
use super::error::{self, Failure};
use super::gather::Gather;
use super::wal_sync::{Completion, WalSync};
use crate::store::batch::take_waiting;
use crate::store::StoreError;

/// Most jobs committed in one transaction; bounds the latency one batch adds to the next.
const MAX_BATCH: usize = 2048;
/// Jobs that may wait for the writer before senders wait too (back-pressure, bounded memory).
const QUEUE_DEPTH: usize = 8192;
/// fsyncs that may be in flight at once (see [`WalSync`]).
const FSYNC_THREADS: usize = 4;

/// The handle that sends jobs to the writer thread. Cheap to clone; the thread stops once every
/// handle is gone and the jobs already sent are done.
#[derive(Clone)]
pub(super) struct Writer {
    /// Queue of the writer thread.
    jobs: mpsc::Sender<Box<dyn WriteJob>>,
}

/// What the writer thread does besides its jobs: it is told how each transaction ended, and
/// gets the connection between batches, once their callers are answered or waiting for the
/// fsync.
pub(super) trait Upkeep: Send {
    /// A transaction committed (`true`) or rolled back.
    fn settled(&mut self, committed: bool);
    /// Work that must not hold up a batch: run after each one.
    fn between_batches(&mut self, conn: &mut Connection);
}

impl Writer {
    /// Starts the writer thread on `conn`. With `fsync_wal_of`, the database whose WAL it is,
    /// durable jobs are answered only once hookline has fsynced that WAL after their commit;
    /// without, as soon as they are committed.
    pub(super) fn start<C>(
        conn: C,
        fsync_wal_of: Option<&Path>,
        upkeep: Box<dyn Upkeep>,
    ) -> std::io::Result<Self>
    where
        C: DerefMut<Target = Connection> + Send + 'static,
    {
        let syncer = match fsync_wal_of {
            Some(db) => Some(WalSync::start(db.to_path_buf(), FSYNC_THREADS)?),
            None => None,
        };
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("hookline-store".into())
            .spawn(move || {
                batch_thread::run_as_batch();
                writer_loop(conn, queue, syncer, upkeep)
            })?;
        Ok(Writer { jobs })
    }

    /// Sends a job to the writer and waits for its committed result. `doing` names the job in
    /// the error when the database fails it (`"claim deliveries"`).
    pub(super) async fn write<T, F>(&self, doing: &'static str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Transaction<'_>) -> Result<T, Failure> + Send + 'static,
    {
        self.submit(doing, work, false).await
    }

    /// Sends a job to the writer and waits until its result is committed and, with
    /// `synchronous = full`, on disk: what intake waits for before it acknowledges.
    pub(super) async fn write_durable<T, F>(
        &self,
        doing: &'static str,
        work: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Transaction<'_>) -> Result<T, Failure> + Send + 'static,
    {
        self.submit(doing, work, true).await
    }

    async fn submit<T, F>(
        &self,
        doing: &'static str,
        work: F,
        durable: bool,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Transaction<'_>) -> Result<T, Failure> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job = Box::new(Job {
            doing,
            work,
            outcome: None,
            reply,
            durable,
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        result.await.map_err(|_| StoreError::Closed)?
    }
}

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
    /// What the job does, for its error message.
    doing: &'static str,
    work: F,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    durable: bool,
}

impl<T, F> WriteJob for Job<T, F>
where
    T: Send,
    F: FnMut(&Transaction<'_>) -> Result<T, Failure> + Send,
{
    fn run(&mut self, tx: &Transaction<'_>) -> Result<(), String> {
        let (outcome, failed) = match (self.work)(tx) {
            Err(Failure::Database(e)) => {
                let message = error::unavailable(self.doing, &e);
                (Err(StoreError::Unavailable(message.clone())), Err(message))
            }
            outcome => (outcome.map_err(|e| e.into_store_error(self.doing)), Ok(())),
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
            (Ok(()), None) => Err(StoreError::Unavailable(format!(
                "cannot {}: the job did not run",
                self.doing
            ))),
        };
        // The caller may have given up waiting (request cancelled); nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// The writer thread: batch, run, commit, then reply or hand durable jobs to the syncers, then
/// upkeep, until every sender is gone.
fn writer_loop<C: DerefMut<Target = Connection>>(
    mut conn: C,
    mut queue: mpsc::Receiver<Box<dyn WriteJob>>,
    syncer: Option<WalSync<dyn WriteJob>>,
    mut upkeep: Box<dyn Upkeep>,
) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(MAX_BATCH);
    let mut gather = Gather::default();
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        take_waiting(&mut queue, &mut batch, MAX_BATCH);
        if let Some(wait) = gather.wait(intake_events(&batch), Instant::now()) {
            std::thread::sleep(wait);
            take_waiting(&mut queue, &mut batch, MAX_BATCH);
        }
        // Events per commit: intake's jobs only, and only commits that carry any (bookkeeping
        // such as claims and attempt records commits without a request waiting on it).
        let events = intake_events(&batch);
        if events > 0 {
            gather.committed(events, Instant::now());
            crate::metrics::commit_batch(events);
        }
        let conn = &mut *conn;
        match commit_together(conn, &mut batch, &mut *upkeep) {
            Err(BatchError::Job(e)) if batch.len() > 1 => {
                // One job's database error must not fail the others: commit each on its own.
                tracing::warn!(error = %e, jobs = batch.len(), "a job failed; committing the batch's jobs one by one");
                for mut job in batch.drain(..) {
                    let jobs = std::slice::from_mut(&mut job);
                    let commit = commit_together(conn, jobs, &mut *upkeep);
                    complete(vec![job], commit.map_err(String::from), syncer.as_ref());
                }
            }
            commit => complete(
                std::mem::take(&mut batch),
                commit.map_err(String::from),
                syncer.as_ref(),
            ),
        }
        upkeep.between_batches(conn);
    }
    // The connection goes before the upkeep, which may hold what SQLite calls back into.
    drop(conn);
    drop(upkeep);
}

/// Intake's jobs in a batch: those whose callers wait for the commit to be on disk.
fn intake_events(batch: &[Box<dyn WriteJob>]) -> usize {
    batch.iter().filter(|job| job.durable()).count()
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

/// Runs jobs in one transaction and commits it, or rolls it back on the first database error;
/// tells `upkeep` which.
fn commit_together(
    conn: &mut Connection,
    jobs: &mut [Box<dyn WriteJob>],
    upkeep: &mut dyn Upkeep,
) -> Result<(), BatchError> {
    let result = run_and_commit(conn, jobs);
    upkeep.settled(result.is_ok());
    result
}

fn run_and_commit(conn: &mut Connection, jobs: &mut [Box<dyn WriteJob>]) -> Result<(), BatchError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| BatchError::Transaction(error::unavailable("begin a transaction", &e)))?;
    for job in jobs.iter_mut() {
        job.run(&tx).map_err(BatchError::Job)?;
    }
    tx.commit()
        .map_err(|e| BatchError::Transaction(error::unavailable("commit", &e)))
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
