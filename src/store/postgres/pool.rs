//! Connections: a bounded pool with timeouts, and running one operation on a pooled connection
//! within a bounded time.
//!
//! Every wait has an end, so that an unreachable or stuck database turns into an error (and
//! intake's 503) rather than requests that hang: waiting for a free connection
//! ([`POOL_WAIT`]), connecting (`connect_timeout` of the URL, 5 s by default), and an operation
//! on its connection ([`OPERATION_TIMEOUT`]). A connection that failed in a way that may have
//! broken it is closed rather than given back to the pool.

use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};

use super::error::Failure;
use super::url::DatabaseUrl;
use crate::store::StoreError;

/// Most time one operation may take on its connection, the commit included: past it the
/// operation fails (for intake: 503, and the sender retries; dedupe absorbs a commit that did
/// happen).
pub(super) const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Most time an operation waits for a free connection, or for a used one to be checked.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// A pooled connection.
pub(super) type Connection = Object;

/// The pool, and the URL its errors are redacted with.
pub(super) struct Db {
    pool: Pool,
    url: DatabaseUrl,
}

impl Db {
    /// A pool of at most `size` connections to `url`; connects lazily.
    pub(super) fn new(url: &DatabaseUrl, size: usize) -> Result<Db, String> {
        let tls = url.tls().connector()?;
        let manager = Manager::from_config(
            url.driver().clone(),
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let connect_timeout = url.driver().get_connect_timeout().copied();
        let pool = Pool::builder(manager)
            .max_size(size.max(1))
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(connect_timeout)
            .recycle_timeout(Some(POOL_WAIT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| format!("cannot set up the connection pool: {e}"))?;
        Ok(Db {
            pool,
            url: url.clone(),
        })
    }

    /// The URL connected to.
    pub(super) fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Runs `work` on a pooled connection within [`OPERATION_TIMEOUT`]; `doing` names it in
    /// the error (`"claim deliveries"`).
    pub(super) async fn run<T>(
        &self,
        doing: &str,
        work: impl AsyncFnOnce(&mut Connection) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        self.try_run(work).await.map_err(|f| self.error(doing, f))
    }

    /// [`Db::run`], keeping the failure as it is (for callers that tell failures apart).
    pub(super) async fn try_run<T>(
        &self,
        work: impl AsyncFnOnce(&mut Connection) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let mut conn = self.connection().await?;
        let result = bounded(&mut conn, work).await;
        if result.as_ref().is_err_and(Failure::spoils_the_connection) {
            drop(Object::take(conn));
        }
        result
    }

    /// A pooled connection, without a bound on what is done with it (migrations, which may
    /// wait for another replica's).
    pub(super) async fn connection(&self) -> Result<Connection, Failure> {
        self.pool.get().await.map_err(pool_failure)
    }

    /// The store's error for a failure of `doing`, redacted.
    pub(super) fn error(&self, doing: &str, failure: Failure) -> StoreError {
        failure.into_store_error(doing, |text| self.url.redact(text))
    }
}

/// Runs `work` on `conn` within [`OPERATION_TIMEOUT`].
pub(super) async fn bounded<T>(
    conn: &mut Connection,
    work: impl AsyncFnOnce(&mut Connection) -> Result<T, Failure>,
) -> Result<T, Failure> {
    tokio::time::timeout(OPERATION_TIMEOUT, work(conn))
        .await
        .unwrap_or(Err(Failure::TimedOut(OPERATION_TIMEOUT)))
}

/// Why no connection could be had: the server's or the connection's error as it is, the pool's
/// in words.
fn pool_failure(e: PoolError) -> Failure {
    use deadpool_postgres::TimeoutType;
    Failure::Connection(match e {
        PoolError::Backend(e) => return Failure::Database(e),
        PoolError::Timeout(TimeoutType::Wait) => format!(
            "every pooled connection stayed busy for {}s (store.pool_size may be too small)",
            POOL_WAIT.as_secs()
        ),
        PoolError::Timeout(TimeoutType::Create) => "connecting to PostgreSQL timed out".into(),
        PoolError::Timeout(TimeoutType::Recycle) => "checking a pooled connection timed out".into(),
        other => format!("no connection: {other}"),
    })
}
