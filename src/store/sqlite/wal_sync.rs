//! Making commits durable with fsyncs that overlap.
//!
//! With `PRAGMA synchronous = FULL`, SQLite fsyncs the WAL inside every commit, while the single
//! writer holds the write lock: commits, and the requests waiting on them, queue behind one fsync
//! at a time. On disks where a flush takes milliseconds that caps throughput at
//! `connections / fsync latency`, whatever the CPU does.
//!
//! So hookline commits with `synchronous = NORMAL` (the transaction is in the WAL, in the OS page
//! cache: it survives a crash of the process, not yet a power cut) and hands the jobs that must be
//! durable to a few syncer threads. A syncer takes every job queued so far, calls `fdatasync` on
//! the WAL file, and only then lets their callers answer. Since a job is queued only after its
//! commit, the fsync that releases it started after its frames were written: what was
//! acknowledged is on disk, exactly as with `FULL`. Meanwhile the writer goes on committing, and
//! several fsyncs can be in flight at once.
//!
//! This is sound because SQLite never rewrites the frames of a committed transaction in place:
//! the WAL only grows until a checkpoint has copied it into the database file, and with `NORMAL`
//! SQLite syncs the WAL before and the database file after every checkpoint, before the WAL is
//! reused.
//!
//! One more thing `FULL` does: the first time SQLite syncs a WAL file it created, it also syncs
//! the directory, so that the file's entry survives a power cut too (on some file systems a new
//! file fsynced without its directory can vanish). hookline creates the WAL anew on every start
//! after a clean shutdown (SQLite deletes it on close) and on the first start, where the
//! database file is new too; so whenever a syncer meets a WAL file it has not synced before, it
//! syncs the data directory after the file, before releasing anyone: both files' entries are on
//! disk before the first acknowledgement that depends on them.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

/// Something that waits on the store: told once whether what it waits for (a commit, or the
/// fsync after it) succeeded.
pub(super) trait Completion: Send {
    /// Completes it with `Ok`, or with the error that makes its result unusable.
    fn complete(self: Box<Self>, result: Result<(), String>);
}

/// The handle the writer uses to queue committed jobs for an fsync.
pub(super) struct WalSync<J: ?Sized> {
    /// Queue shared by the syncer threads: the durable jobs of one commit per message, so that
    /// the syncer that wakes for a commit takes all of its jobs (sent one by one, a commit's
    /// jobs were often split between two syncers, two fsyncs where one does).
    queue: Sender<Vec<Box<J>>>,
}

impl<J: Completion + ?Sized + 'static> WalSync<J> {
    /// Starts `threads` syncers for the WAL of the database at `db_path`.
    pub(super) fn start(db_path: PathBuf, threads: usize) -> std::io::Result<Self> {
        let (queue, jobs) = std::sync::mpsc::channel::<Vec<Box<J>>>();
        let jobs = Arc::new(Mutex::new(jobs));
        let mut wal = db_path.into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        for n in 0..threads.max(1) {
            let (jobs, wal) = (jobs.clone(), wal.clone());
            std::thread::Builder::new()
                .name(format!("hookline-fsync-{n}"))
                .spawn(move || syncer_loop(WalFile::new(wal), &jobs))?;
        }
        Ok(WalSync { queue })
    }

    /// Queues the jobs of a transaction that has committed; they complete after the next fsync.
    pub(super) fn after_commit(&self, jobs: Vec<Box<J>>) {
        if jobs.is_empty() {
            return;
        }
        if let Err(unsent) = self.queue.send(jobs) {
            // No syncer left (they only stop when the queue is dropped): never acknowledge.
            for job in unsent.0 {
                job.complete(Err("store fsync threads are gone".into()));
            }
        }
    }
}

/// One syncer: wait for a commit's jobs, take every other commit's queued by then, fsync,
/// release them all.
fn syncer_loop<J: Completion + ?Sized>(mut wal: WalFile, jobs: &Mutex<Receiver<Vec<Box<J>>>>) {
    loop {
        let batch = {
            let Ok(queue) = jobs.lock() else { return };
            let Ok(mut batch) = queue.recv() else { return };
            queue.try_iter().for_each(|more| batch.extend(more));
            batch
        };
        let result = wal.sync().map_err(|e| format!("cannot fsync the WAL: {e}"));
        if let Err(e) = &result {
            tracing::error!(error = %e, jobs = batch.len(), "store fsync failed");
        }
        for job in batch {
            job.complete(result.clone());
        }
    }
}

/// The WAL file, opened read-only just to fsync it, reopened if SQLite ever replaced it.
struct WalFile {
    /// Path of `hookline.db-wal`.
    path: PathBuf,
    /// The open file and its inode, once opened.
    open: Option<(File, u64)>,
    /// The inode whose directory entry this syncer has synced.
    entry_synced: Option<u64>,
}

impl WalFile {
    fn new(path: PathBuf) -> Self {
        WalFile {
            path,
            open: None,
            entry_synced: None,
        }
    }

    /// Flushes the WAL's data to stable storage, and the data directory after a WAL file this
    /// syncer has not synced before (see the module doc).
    fn sync(&mut self) -> std::io::Result<()> {
        let current = inode(&self.path)?;
        if self.open.as_ref().map(|(_, ino)| *ino) != Some(current) {
            let file = File::open(&self.path)?;
            let ino = file.metadata()?.ino();
            self.open = Some((file, ino));
        }
        let Some((file, ino)) = &self.open else {
            return Err(std::io::Error::other("WAL file not open"));
        };
        file.sync_data()?;
        if self.entry_synced != Some(*ino) {
            sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
            self.entry_synced = Some(*ino);
        }
        Ok(())
    }
}

/// The inode number of the file at `path`, asking for nothing else where the system can.
///
/// A `stat` that reads a file's times tells Linux (6.13 and later: "multigrain timestamps")
/// that someone is watching them, and the next write stamps the file with a fine-grained time
/// rather than the clock's last tick: the inode changes with every write. The syncers looked up
/// the WAL's inode with `std::fs::metadata` before each fsync, which asks for the times; on ext4
/// every `fdatasync` then wrote the inode block as well (3 device writes per fsync instead of
/// 2.2, docs/performance-log.md, "The fsync threads' stat dirtied the WAL's inode").
fn inode(path: &Path) -> std::io::Result<u64> {
    #[cfg(target_os = "linux")]
    if let Some(ino) = statx_inode(path)? {
        return Ok(ino);
    }
    Ok(std::fs::metadata(path)?.ino())
}

/// `statx(STATX_INO)`; `None` where there is no `statx` (kernels before 4.11, and container
/// seccomp profiles older than it, which refuse it with `EPERM`).
#[cfg(target_os = "linux")]
fn statx_inode(path: &Path) -> std::io::Result<Option<u64>> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in a path"))?;
    // SAFETY: `statx` is a plain C struct, for which all zeroes is a valid value.
    let mut found: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and lives through the call; `found` is writable.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            0,
            libc::STATX_INO,
            &mut found,
        )
    };
    if rc == 0 {
        return Ok(Some(found.stx_ino));
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ENOSYS | libc::EPERM) => Ok(None),
        _ => Err(error),
    }
}

/// Flushes a directory's entries (files created, renamed or deleted in it) to stable storage.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Reports its completion on a channel.
    struct Probe(mpsc::Sender<Result<(), String>>);

    impl Completion for Probe {
        fn complete(self: Box<Self>, result: Result<(), String>) {
            let _ = self.0.send(result);
        }
    }

    fn complete_one(db: PathBuf) -> Result<(), String> {
        let sync = WalSync::<Probe>::start(db, 2).unwrap();
        let (tx, rx) = mpsc::channel();
        sync.after_commit(vec![Box::new(Probe(tx))]);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap()
    }

    #[test]
    fn committed_jobs_complete_after_the_wal_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.db-wal"), b"frames").unwrap();
        assert_eq!(complete_one(dir.path().join("x.db")), Ok(()));
    }

    #[test]
    fn a_failed_fsync_is_never_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let err = complete_one(dir.path().join("missing.db")).unwrap_err();
        assert!(err.contains("cannot fsync the WAL"), "{err}");
    }

    #[test]
    fn a_replaced_wal_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db-wal");
        std::fs::write(&path, b"one").unwrap();
        let mut wal = WalFile::new(path.clone());
        wal.sync().unwrap();
        let first = wal.open.as_ref().unwrap().1;
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"two").unwrap();
        wal.sync().unwrap();
        assert_ne!(wal.open.as_ref().unwrap().1, first);
    }

    #[test]
    fn the_directory_is_synced_after_each_new_wal_file_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db-wal");
        std::fs::write(&path, b"one").unwrap();
        let mut wal = WalFile::new(path.clone());
        assert_eq!(wal.entry_synced, None);
        wal.sync().unwrap();
        let first = wal.open.as_ref().unwrap().1;
        assert_eq!(wal.entry_synced, Some(first), "synced with the first WAL");
        wal.sync().unwrap();
        assert_eq!(wal.entry_synced, Some(first));
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"two").unwrap();
        wal.sync().unwrap();
        let second = wal.open.as_ref().unwrap().1;
        assert_eq!(
            wal.entry_synced,
            Some(second),
            "and again with its replacement"
        );
    }

    #[test]
    fn the_inode_is_the_one_stat_gives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db-wal");
        std::fs::write(&path, b"frames").unwrap();
        let stat = std::fs::metadata(&path).unwrap().ino();
        assert_eq!(inode(&path).unwrap(), stat);
        assert!(inode(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn a_directory_sync_reports_failure() {
        let dir = tempfile::tempdir().unwrap();
        assert!(sync_dir(dir.path()).is_ok());
        assert!(sync_dir(&dir.path().join("gone")).is_err());
    }
}
