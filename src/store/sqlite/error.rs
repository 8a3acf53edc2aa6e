//! How the SQLite store fails. [`StoreError`] names no database, so the conversion from
//! `rusqlite`'s errors lives here, where each failure also gets the operation it interrupted.

use crate::store::StoreError;

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
