//! How the PostgreSQL store fails. [`StoreError`] names no database, so the conversion from the
//! driver's and the pool's errors lives here; every message is passed through the URL's
//! redaction before it leaves the store.

use crate::store::StoreError;

/// Why one of the PostgreSQL store's operations failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The server refused a statement, or the connection failed under it.
    Database(tokio_postgres::Error),
    /// No connection could be had: the pool's wait, connecting, or the server refused it.
    Connection(String),
    /// The operation took longer than hookline waits: this long.
    TimedOut(std::time::Duration),
    /// The request cannot be carried out as asked (not found, conflict, a schema too new).
    Refused(StoreError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Database(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Refused(e)
    }
}

impl Failure {
    /// Whether the connection it happened on may be broken, and must not go back to the pool:
    /// it closed, timed out, or the server said it is shutting down or cannot take it.
    pub(super) fn spoils_the_connection(&self) -> bool {
        match self {
            Failure::Database(e) => {
                let class = e.code().map(|c| &c.code()[..2]);
                e.is_closed() || matches!(class, None | Some("08" | "57" | "58"))
            }
            Failure::TimedOut(_) => true,
            Failure::Connection(_) | Failure::Refused(_) => false,
        }
    }

    /// Whether the database could not be reached, or said it cannot take connections yet
    /// (starting, shutting down): worth trying again later.
    pub(super) fn is_unreachable(&self) -> bool {
        matches!(self, Failure::Connection(_)) || self.spoils_the_connection()
    }

    /// Whether it is about the data of one statement (a value the server refuses, a constraint)
    /// rather than the server or the connection: then the other events of a batch may commit
    /// without the one that caused it.
    pub(super) fn is_about_the_data(&self) -> bool {
        let Failure::Database(e) = self else {
            return false;
        };
        let class = e.code().map(|c| &c.code()[..2]);
        matches!(class, Some("22" | "23" | "54"))
    }

    /// The store's error for this failure of `doing` (`"claim deliveries"`), its text passed
    /// through `redact`: a refusal as it is, anything else as [`StoreError::Unavailable`] that
    /// says what could not be done and why.
    pub(super) fn into_store_error(
        self,
        doing: &str,
        redact: impl Fn(&str) -> String,
    ) -> StoreError {
        let why = match self {
            Failure::Refused(e) => return e,
            Failure::Database(e) => describe(&e),
            Failure::Connection(e) => e,
            Failure::TimedOut(limit) => {
                format!("no answer from PostgreSQL within {}s", limit.as_secs())
            }
        };
        StoreError::Unavailable(redact(&format!("cannot {doing}: {why}")))
    }
}

/// The driver's error in words: the server's message with its SQLSTATE, or what happened to
/// the connection with its causes (the driver's own text leaves them out).
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{} (SQLSTATE {}, PostgreSQL {})",
            db.message(),
            db.code().code(),
            db.severity()
        ),
        None => {
            let mut words = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(inner) = cause {
                words.push_str(&format!(": {inner}"));
                cause = inner.source();
            }
            words
        }
    }
}
