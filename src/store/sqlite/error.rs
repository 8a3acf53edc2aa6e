//! How the SQLite store fails. [`StoreError`] names no database, so the conversion from
//! `rusqlite`'s errors lives here, where each failure also gets the operation it interrupted.

use std::path::Path;

use crate::store::StoreError;
use crate::writable::{dir_problem, file_problem, Unwritable};

/// Why one of the SQLite store's operations failed.
///
/// The writer tells the two apart: a database error aborts the transaction it happened in (and
/// so the batch it was committed with), while a refusal is decided before the job writes
/// anything and leaves the rest of the batch alone.
#[derive(Debug)]
pub(super) enum Failure {
    /// SQLite refused a statement (disk full, I/O error, read-only, locked, corrupt …).
    Database(rusqlite::Error),
    /// The request cannot be carried out as asked (not found, conflict).
    Refused(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Database(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Refused(e)
    }
}

impl Failure {
    /// The store's error for this failure of `doing` (`"claim deliveries"`): a refusal as it
    /// is, a database error as [`StoreError::Unavailable`] that says what could not be done.
    pub(super) fn into_store_error(self, doing: &str) -> StoreError {
        match self {
            Failure::Database(e) => StoreError::Unavailable(unavailable(doing, &e)),
            Failure::Refused(e) => e,
        }
    }
}

/// The message of a database error: what could not be done, then SQLite's own words.
pub(super) fn unavailable(doing: &str, e: &rusqlite::Error) -> String {
    format!("cannot {doing}: {e}")
}

/// The files of an inbox, each of which hookline must be able to write.
const FILES: [&str; 4] = [
    super::lock::LOCK_FILE,
    "hookline.db",
    "hookline.db-wal",
    "hookline.db-shm",
];

/// What stands in the way of opening the inbox in `dir`, found out without creating anything:
/// the directory, or one of its files, that hookline may not write, why, and what to do.
pub(super) fn open_problem(dir: &Path) -> Option<Unwritable> {
    dir_problem(dir)
        .or_else(|| {
            FILES
                .iter()
                .map(|name| dir.join(name))
                .filter(|path| path.exists())
                .find_map(|path| file_problem(&path))
        })
        .map(|problem| problem.fixed_at(dir))
}

/// The error for an inbox in `dir` that could not be opened: what failed (`error`, in the words
/// of SQLite or the OS, which name neither the path nor the reason: "attempt to write a readonly
/// database", "unable to open database file"), then [`open_problem`]'s explanation if it finds
/// one.
pub(super) fn cannot_open(dir: &Path, error: &dyn std::fmt::Display) -> StoreError {
    let explained = open_problem(dir)
        .map(|problem| format!(": {problem}"))
        .unwrap_or_default();
    StoreError::Unavailable(format!(
        "cannot open the inbox in {} ({error}){explained}",
        dir.display()
    ))
}
