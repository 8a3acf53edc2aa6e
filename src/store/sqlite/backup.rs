//! Backing up the inbox while hookline runs, and restoring a backup.
//!
//! A backup is SQLite's online backup API run in one step: it copies every page under one read
//! transaction, which in WAL mode is a snapshot of the last commit before it began and never
//! holds the writer up. So it holds every event acknowledged before the backup started, and
//! none half-written. While a server runs (it holds the data directory's lock), the copy reads
//! through a read-only connection and writes nothing of the inbox; when none runs, the backup
//! takes the lock itself, so that none starts meanwhile.
//!
//! A restore needs the data directory to itself: it refuses while a server holds the lock,
//! checks the backup, moves the current inbox aside (`hookline.db.before-restore-<time>`, with
//! its `-wal` and `-shm`) and puts the backup in its place.

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::lock::{DataDirLock, LockError};
use super::SqliteStore;
use crate::store::StoreError;

/// What a backup or a restore copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Events in the copy.
    pub events: u64,
    /// Size of the copy in bytes.
    pub bytes: u64,
    /// Where the inbox that a restore replaced was moved (nothing for a backup, or when the data
    /// directory had no inbox).
    pub set_aside: Option<PathBuf>,
}

/// The latest schema version this hookline reads (`PRAGMA user_version`); an older one is
/// brought up to date when `serve` opens the restored inbox.
const SCHEMA_VERSION: i64 = super::schema::VERSION;

impl SqliteStore {
    /// Copies the inbox in `dir` into the file `target` (replaced if it exists), consistently,
    /// whether or not a server is running on it.
    pub fn backup(dir: &Path, target: &Path) -> Result<Copied, StoreError> {
        let db = Self::db_path(dir);
        if !db.is_file() {
            return Err(unavailable(format!(
                "there is no inbox at {}",
                db.display()
            )));
        }
        // No server: hold the lock so that none starts while the copy is read.
        let (_lock, flags) = match DataDirLock::acquire(dir) {
            Ok(lock) => (Some(lock), OpenFlags::SQLITE_OPEN_READ_WRITE),
            Err(LockError::Held { .. }) => (None, OpenFlags::SQLITE_OPEN_READ_ONLY),
            Err(e) => return Err(unavailable(e.to_string())),
        };
        let source = Connection::open_with_flags(&db, flags)
            .and_then(|conn| {
                conn.busy_timeout(std::time::Duration::from_secs(5))
                    .map(|()| conn)
            })
            .map_err(|e| super::error::cannot_open(dir, &e))?;
        let partial = partial_path(target);
        let copied = copy(&source, &partial)
            .and_then(|()| finish_copy(&partial, target).map_err(|e| e.to_string()));
        if copied.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        copied.map_err(|e| unavailable(format!("cannot back up to {}: {e}", target.display())))?;
        Ok(Copied {
            set_aside: None,
            ..describe(target)?
        })
    }

    /// Replaces the inbox in `dir` with the backup `source`; refused while a server holds the
    /// data directory. The inbox it replaces is moved aside, not deleted.
    pub fn restore(dir: &Path, source: &Path) -> Result<Copied, StoreError> {
        let _lock = DataDirLock::acquire(dir).map_err(|e| match e {
            LockError::Held { .. } => unavailable(format!("cannot restore: {e}")),
            LockError::Io { source, .. } => super::error::cannot_open(dir, &source),
        })?;
        let checked = describe(source)?;
        let set_aside = set_aside(dir)
            .map_err(|e| unavailable(format!("cannot move the current inbox aside: {e}")))?;
        let db = Self::db_path(dir);
        let partial = partial_path(&db);
        std::fs::copy(source, &partial)
            .and_then(|_| finish_copy(&partial, &db))
            .map_err(|e| {
                unavailable(format!("cannot copy {} into place: {e}", source.display()))
            })?;
        Ok(Copied {
            set_aside,
            ..checked
        })
    }
}

/// The error of a backup or a restore.
fn unavailable(message: String) -> StoreError {
    StoreError::Unavailable(message)
}

/// Where a copy is written before it is complete: beside its final place.
fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Copies every page of `source` into a new database at `partial`, in one step (one read
/// transaction: a snapshot), and leaves it a single self-contained file.
fn copy(source: &Connection, partial: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(partial);
    let mut target = Connection::open(partial).map_err(|e| e.to_string())?;
    {
        let backup = Backup::new(source, &mut target).map_err(|e| e.to_string())?;
        loop {
            match backup.step(-1).map_err(|e| e.to_string())? {
                StepResult::Done => break,
                // A step that could not get its locks copied nothing: try again.
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }
    target
        .query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
        .map_err(|e| e.to_string())
}

/// Makes a finished copy durable, then gives it its final name, durably too.
fn finish_copy(partial: &Path, target: &Path) -> std::io::Result<()> {
    File::open(partial)?.sync_all()?;
    std::fs::rename(partial, target)?;
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty());
    File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
}

/// Checks that `file` is an intact hookline inbox this version can read, and what it holds.
fn describe(file: &Path) -> Result<Copied, StoreError> {
    let invalid =
        |why: String| unavailable(format!("{} is not a usable backup: {why}", file.display()));
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| invalid(e.to_string()))?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| invalid(e.to_string()))?;
    if check != "ok" {
        return Err(invalid(format!("SQLite's quick_check says {check:?}")));
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| invalid(e.to_string()))?;
    if !(1..=SCHEMA_VERSION).contains(&version) {
        return Err(invalid(format!(
            "schema version {version}, and this hookline reads 1 to {SCHEMA_VERSION}"
        )));
    }
    let events: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .map_err(|e| invalid(e.to_string()))?;
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    Ok(Copied {
        events: events as u64,
        bytes,
        set_aside: None,
    })
}

/// Moves the inbox of `dir` (database, `-wal`, `-shm`) to `hookline.db.before-restore-<unix
/// seconds>` and the same with `-wal` and `-shm`; returns the database's new path, or `None`
/// when there was no inbox.
fn set_aside(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    let db = SqliteStore::db_path(dir);
    if !db.exists() {
        return Ok(None);
    }
    let stamp = chrono::Utc::now().timestamp();
    let aside = dir.join(format!("hookline.db.before-restore-{stamp}"));
    for suffix in ["-wal", "-shm", ""] {
        let from = dir.join(format!("hookline.db{suffix}"));
        if from.exists() {
            std::fs::rename(
                &from,
                dir.join(format!("hookline.db.before-restore-{stamp}{suffix}")),
            )?;
        }
    }
    Ok(Some(aside))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{event, to};
    use crate::store::{Store, Synchronous};
    use chrono::TimeDelta;

    #[tokio::test]
    async fn a_backup_restores_into_another_directory_and_sets_the_old_inbox_aside() {
        let from = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(from.path(), Synchronous::Full, 0).unwrap();
        for n in 0..3 {
            let id = format!("m{n}");
            store
                .insert(&event(&id, TimeDelta::zero()), to("h"))
                .await
                .unwrap();
        }
        let file = from.path().join("backup.db");
        // While the store is open (its lock held), the copy reads beside it.
        let copied = SqliteStore::backup(from.path(), &file).unwrap();
        assert_eq!(copied.events, 3);
        assert!(!partial_path(&file).exists());
        drop(store);

        let to = tempfile::tempdir().unwrap();
        let other = SqliteStore::open(to.path(), Synchronous::Full, 0).unwrap();
        other
            .insert(&event("x", TimeDelta::zero()), vec![])
            .await
            .unwrap();
        // Refused while a store has the directory.
        let err = SqliteStore::restore(to.path(), &file).unwrap_err();
        assert!(
            err.to_string().contains("another hookline process"),
            "{err}"
        );
        drop(other);
        let restored = SqliteStore::restore(to.path(), &file).unwrap();
        assert_eq!(restored.events, 3);
        let aside = restored.set_aside.unwrap();
        assert!(aside.is_file());
        let reopened = SqliteStore::open(to.path(), Synchronous::Full, 0).unwrap();
        let listed = reopened.list_events(Default::default()).await.unwrap();
        assert_eq!(listed.len(), 3);
    }

    #[test]
    fn what_is_not_an_inbox_is_refused_before_anything_moves() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"not a database at all, but long enough to look at").unwrap();
        std::fs::write(SqliteStore::db_path(dir.path()), b"the current inbox").unwrap();
        let err = SqliteStore::restore(dir.path(), &junk).unwrap_err();
        assert!(err.to_string().contains("is not a usable backup"), "{err}");
        assert_eq!(
            std::fs::read(SqliteStore::db_path(dir.path())).unwrap(),
            b"the current inbox"
        );
    }
}
