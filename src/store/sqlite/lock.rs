//! One hookline per data directory.
//!
//! SQLite's own locking lets several processes share a database, but hookline's durability
//! does not: its writer thread batches and fsyncs on the assumption that it is the only writer,
//! and two processes would each dispatch the same deliveries. So the store holds an exclusive
//! `flock` on `hookline.lock` in the data directory for as long as it is open, and a second
//! process (a second `hookline serve`, or `hookline restore`) that finds it taken refuses to
//! start, naming the process that holds it. The kernel releases the lock when its holder exits,
//! however it exits, so a `kill -9` leaves nothing stale behind.
//!
//! `flock` locks are per open file: a second store opened on the same directory inside one
//! process is refused as well.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub(super) const LOCK_FILE: &str = "hookline.lock";

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub(crate) struct DataDirLock {
    /// The open lock file, which holds the `flock`.
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it.
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The holder's process id, as it wrote it into the file.
        holder: Option<u32>,
    },
    /// The lock file could not be opened or locked.
    Io {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { dir, holder } => write!(
                f,
                "another hookline process{} is using the data directory {dir} (it holds \
                 {lock}); two processes must never write one inbox: stop the other one first, \
                 or give this one its own HOOKLINE_DATA_DIR",
                holder
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default(),
                dir = dir.display(),
                lock = dir.join(LOCK_FILE).display(),
            ),
            LockError::Io { dir, source } => {
                write!(
                    f,
                    "cannot lock the data directory {}: {source}",
                    dir.display()
                )
            }
        }
    }
}

impl std::error::Error for LockError {}

impl DataDirLock {
    /// Takes the lock of `dir` (which must exist), or says who has it; writes this process's id
    /// into the lock file for the next one to name.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, LockError> {
        let io = |source| LockError::Io {
            dir: dir.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io)?;
        if !try_lock(&file).map_err(io)? {
            return Err(LockError::Held {
                dir: dir.to_owned(),
                holder: holder(&mut file),
            });
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(io)?;
        Ok(DataDirLock { _file: file })
    }

    /// Whether another process holds the lock of `dir`, found out without creating anything:
    /// `Ok` when nobody does (or there is no lock file yet).
    pub(crate) fn check_free(dir: &Path) -> Result<(), LockError> {
        let Ok(mut file) = File::open(dir.join(LOCK_FILE)) else {
            return Ok(());
        };
        let io = |source| LockError::Io {
            dir: dir.to_owned(),
            source,
        };
        if try_lock(&file).map_err(io)? {
            return Ok(()); // Released when `file` closes, below.
        }
        Err(LockError::Held {
            dir: dir.to_owned(),
            holder: holder(&mut file),
        })
    }
}

/// Takes an exclusive `flock` without waiting: `Ok(false)` when another open file has it.
fn try_lock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a descriptor this `File` owns and keeps open; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.kind() == std::io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(error)
    }
}

/// The process id the holder wrote into the lock file, if it can be read.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        assert!(DataDirLock::check_free(dir.path()).is_err());
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(
            matches!(&err, LockError::Held { holder: Some(pid), .. } if *pid == std::process::id()),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("another hookline process"), "{message}");
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        drop(first);
        assert!(DataDirLock::check_free(dir.path()).is_ok());
        assert!(DataDirLock::acquire(dir.path()).is_ok());
    }

    #[test]
    fn checking_a_fresh_directory_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        DataDirLock::check_free(dir.path()).unwrap();
        assert!(!dir.path().join(LOCK_FILE).exists());
    }
}
