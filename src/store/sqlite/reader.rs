//! The connection the inspector reads through, beside the writer thanks to WAL: a listing never
//! waits for a commit, and a commit never waits for a listing.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::error::Failure;
use crate::store::StoreError;

/// The read connection. Cheap to clone: clones share it.
#[derive(Clone)]
pub(super) struct Reader {
    conn: Arc<Mutex<Connection>>,
}

impl Reader {
    /// Reads through `conn` from now on.
    pub(super) fn new(conn: Connection) -> Self {
        Reader {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    /// Runs a read off the async runtime. `doing` names it in the error when the database fails
    /// it (`"list events"`).
    pub(super) async fn read<T, F>(&self, doing: &'static str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Failure> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn
                .lock()
                .map_err(|_| StoreError::Unavailable("reader lock poisoned".into()))?;
            work(&conn).map_err(|e| e.into_store_error(doing))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot {doing}: {e}")))?
    }
}
