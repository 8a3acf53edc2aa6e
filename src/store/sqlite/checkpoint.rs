//! WAL checkpoints off the commit path.
//!
//! A checkpoint copies the pages the WAL holds into the database file and syncs it, so that the
//! WAL can start over. SQLite's own (`wal_autocheckpoint`) runs inside the commit that crosses
//! its threshold, and holds the writer thread, with every request waiting on its batch, for as
//! long as copying and syncing hundreds of MiB takes: the 200–300 ms maxima of the benchmark,
//! and 14–32 s before a restart after a crash could answer (the first commit found a full WAL).
//!
//! Here the writer's connection never checkpoints (`wal_autocheckpoint = 0`). A WAL hook
//! ([`HookedConnection`]) counts the frames the WAL holds after each commit. Every [`STEP`]
//! frames the writer wakes a checkpointer thread, which runs a `PASSIVE` checkpoint on its own
//! connection while the writer goes on committing: it copies the frames committed so far and
//! syncs the database file. Past [`CHECKPOINT_AT`] the WAL should start over; a checkpoint
//! beside a writer copies only the frames committed when it began, and the WAL can start over
//! only once all are copied: so the checkpointer repeats until at most [`TAIL`] frames are
//! left, and the writer copies those itself between two batches (about a millisecond, its sync
//! finding little left to write); its next commit then starts the WAL over.
//!
//! Why in steps rather than all at [`CHECKPOINT_AT`]: the sync of the database file after a
//! checkpoint writes out every page it copied, and the disk writes the WAL's own fsyncs behind
//! it. One checkpoint of 64 MiB of WAL wrote ~16 MiB of pages, and its sync held every fsync of
//! intake, and so every acknowledgement, for 10–15 ms, once a second at a paced load: the p99.
//! A step's sync has a few MiB to write (docs/performance.md, "Small commits and the
//! checkpoint's sync").
//!
//! Durability stays SQLite's: every checkpoint syncs the WAL before it copies and the database
//! file before it lets the WAL be reused, whichever connection runs it.

use std::ffi::{c_char, c_int, c_void};
use std::fs::File;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{ffi, Connection};

/// WAL frames (4 KiB pages) past which the checkpointer starts: 64 MiB of WAL. Off the commit
/// path a smaller WAL costs nothing in latency, and it is what a restart after a crash must read
/// back before the store can commit.
pub(super) const CHECKPOINT_AT: u32 = 16384;
/// WAL frames (4 MiB) the writer commits before the checkpointer copies them into the database
/// file, well before [`CHECKPOINT_AT`]: each step's sync then writes a few MiB. Smaller steps
/// copy a page that many commits rewrite (the growing end of a table) more often.
pub(super) const STEP: u32 = 1024;
/// Frames the checkpointer leaves for the writer to copy.
const TAIL: u32 = 256;
/// Pause after a pass that copied nothing (a long read keeps old frames in use), so that the
/// checkpointer does not spin while it lasts.
const STUCK_PAUSE: Duration = Duration::from_millis(50);

/// The writer's side of checkpointing: wakes the checkpointer, and finishes what it left.
pub(super) struct Checkpoints {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the writer, the WAL hook and the checkpointer share.
#[derive(Default)]
struct Shared {
    /// Frames in the WAL after the writer's last commit, as the WAL hook reports them.
    frames: AtomicU32,
    /// Frames of the WAL the checkpointer had copied into the database file after its last
    /// step (0 once the WAL started over).
    copied: AtomicU32,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// The writer asked for a checkpoint.
    wanted: bool,
    /// The checkpointer is at work.
    running: bool,
    /// At most [`TAIL`] frames are left to copy: the writer's turn.
    caught_up: bool,
    /// The writer is gone.
    stop: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the checkpointer has work: a [`STEP`] of new frames, or a WAL that should start
    /// over.
    fn checkpoint_due(&self) -> bool {
        let frames = self.frames.load(Ordering::Relaxed);
        let mut copied = self.copied.load(Ordering::Relaxed);
        if frames < copied {
            // The WAL started over since (its frames were all copied and nothing read them).
            copied = 0;
            self.copied.store(0, Ordering::Relaxed);
        }
        frames >= CHECKPOINT_AT || frames - copied >= STEP
    }
}

impl Checkpoints {
    /// Starts the checkpointer thread for the database at `db` and hooks the writer's
    /// connection, which must not checkpoint by itself (`wal_autocheckpoint = 0`).
    pub(super) fn start(
        db: &Path,
        writer: Connection,
    ) -> std::io::Result<(Checkpoints, HookedConnection)> {
        let conn = super::open_connection(db).map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared::default());
        let writer = HookedConnection::new(writer, shared.clone());
        let (ours, db) = (shared.clone(), db.to_path_buf());
        let thread = std::thread::Builder::new()
            .name("hookline-checkpoint".into())
            .spawn(move || checkpointer(conn, &db, &ours))?;
        let checkpoints = Checkpoints {
            shared,
            thread: Some(thread),
        };
        Ok((checkpoints, writer))
    }

    /// Between batches: copies the last frames when the checkpointer caught up, or wakes it
    /// when the WAL has grown by a [`STEP`] or past [`CHECKPOINT_AT`].
    pub(super) fn between_batches(&mut self, conn: &Connection) {
        let mut state = self.shared.state();
        if state.caught_up {
            state.caught_up = false;
            drop(state);
            finish(conn);
            self.shared.copied.store(0, Ordering::Relaxed);
        } else if !state.wanted && !state.running && self.shared.checkpoint_due() {
            state.wanted = true;
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.shared.state().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Copies what is left of the WAL from the writer's own connection: nothing commits meanwhile,
/// so the checkpoint completes (unless a reader still uses old frames) and the next commit
/// starts the WAL over.
fn finish(conn: &Connection) {
    let started = Instant::now();
    match passive_checkpoint(conn) {
        Ok(_) => crate::metrics::checkpoint("writer", started.elapsed()),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries"),
    }
}

/// Runs a `PASSIVE` checkpoint; returns how many frames of the WAL are copied into the
/// database file after it (`None` if SQLite does not say: not in WAL mode).
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<Option<u32>> {
    let copied: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(2))?;
    Ok(u32::try_from(copied).ok())
}

/// The checkpointer thread: waits until asked, then copies a step, or checkpoints until the
/// writer can finish.
fn checkpointer(conn: Connection, db: &Path, shared: &Shared) {
    let db_file = DbFile(db.to_path_buf());
    loop {
        {
            let mut state = shared.state();
            while !state.wanted && !state.stop {
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.stop {
                return;
            }
            (state.wanted, state.running) = (false, true);
        }
        let caught_up = catch_up(&conn, &db_file, shared);
        let mut state = shared.state();
        (state.running, state.caught_up) = (false, caught_up);
    }
}

/// Checkpoints once while the WAL is below [`CHECKPOINT_AT`]; past it, until at most [`TAIL`]
/// frames of the WAL are left, then syncs the database file so that the writer's last step has
/// little left to sync. `true` when the writer can finish; `false` after a step, or when it
/// could not get there (a failure, or a reader holding old frames). A pass that copied nothing
/// new pauses for [`STUCK_PAUSE`], so that the writer, finding the step still due after its next
/// batch, does not set off pass after empty pass while a long read lasts.
fn catch_up(conn: &Connection, db: &DbFile, shared: &Shared) -> bool {
    let mut last_left = u32::MAX;
    let copied_before = shared.copied.load(Ordering::Relaxed);
    loop {
        let started = Instant::now();
        let copied = match passive_checkpoint(conn) {
            Ok(Some(copied)) => copied,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "background WAL checkpoint failed; the next one retries");
                return false;
            }
        };
        crate::metrics::checkpoint("background", started.elapsed());
        shared.copied.store(copied, Ordering::Relaxed);
        // Frames the writer committed during the pass are left too.
        let frames = shared.frames.load(Ordering::Relaxed);
        if frames < CHECKPOINT_AT {
            if copied <= copied_before {
                std::thread::sleep(STUCK_PAUSE);
            }
            return false;
        }
        let left = frames.saturating_sub(copied);
        if left <= TAIL {
            if let Err(e) = db.sync() {
                tracing::warn!(error = %e, "cannot sync the database file after a checkpoint");
            }
            return true;
        }
        if left >= last_left {
            std::thread::sleep(STUCK_PAUSE);
            return false;
        }
        last_left = left;
    }
}

/// The database file, synced by the checkpointer so that the writer's own checkpoint finds
/// little left to sync.
struct DbFile(PathBuf);

impl DbFile {
    fn sync(&self) -> std::io::Result<()> {
        File::open(&self.0)?.sync_data()
    }
}

/// The writer's connection, with a WAL hook that keeps [`Shared::frames`] up to date.
pub(super) struct HookedConnection {
    conn: Connection,
    /// Kept alive for as long as the hook points at it.
    shared: Arc<Shared>,
}

impl HookedConnection {
    fn new(conn: Connection, shared: Arc<Shared>) -> HookedConnection {
        let frames: *const AtomicU32 = &shared.frames;
        // SAFETY: the handle is this open connection's. The hook's argument points into
        // `shared`, which this value keeps alive, and `Drop` removes the hook before releasing
        // it. The hook only stores a number.
        unsafe {
            ffi::sqlite3_wal_hook(conn.handle(), Some(count_frames), frames as *mut c_void);
        }
        HookedConnection { conn, shared }
    }
}

impl Drop for HookedConnection {
    fn drop(&mut self) {
        // SAFETY: the handle is this open connection's; removing its hook needs nothing else.
        unsafe {
            ffi::sqlite3_wal_hook(self.conn.handle(), None, std::ptr::null_mut());
        }
        let _ = &self.shared;
    }
}

impl Deref for HookedConnection {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for HookedConnection {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// SQLite's WAL hook: called after each commit with the frames the WAL now holds.
unsafe extern "C" fn count_frames(
    frames: *mut c_void,
    _db: *mut ffi::sqlite3,
    _name: *const c_char,
    count: c_int,
) -> c_int {
    // SAFETY: registered by `HookedConnection::new` with a pointer to an `AtomicU32` that
    // outlives the hook.
    let frames = unsafe { &*(frames as *const AtomicU32) };
    frames.store(count.max(0) as u32, Ordering::Relaxed);
    ffi::SQLITE_OK
}
