//! The PostgreSQL store's tests, against a real server (a scratch cluster, see
//! `tests/common/postgres.rs`): every rule of [`crate::store::conformance`], and what only a
//! store that replicas share must do.

#[path = "../../../../tests/common/postgres.rs"]
mod scratch;

use std::sync::Arc;

use async_trait::async_trait;

use super::{DatabaseUrl, PostgresStore};
use crate::store::conformance::Fixture;
use crate::store::Store;
use scratch::Cluster;

/// A database of its own on the shared cluster, for one rule.
struct Fresh(DatabaseUrl);

/// A fresh database's URL.
fn fresh_url() -> DatabaseUrl {
    let cluster = Cluster::shared();
    cluster
        .url(&cluster.database())
        .parse()
        .expect("a valid URL")
}

#[async_trait]
impl Fixture for Fresh {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(PostgresStore::open(&self.0, 4).await.expect("store opens"))
    }

    fn shared(&self) -> bool {
        true
    }
}

/// Every rule of the store, against PostgreSQL.
mod conformance {
    crate::store_conformance!(super::Fresh(super::fresh_url()));
}

mod connections;
mod faults;
mod migrations;
mod order;
mod replicas;

/// A store on a new database of the shared cluster, and that database's URL.
async fn open_fresh() -> (PostgresStore, DatabaseUrl) {
    let url = fresh_url();
    (open(&url).await, url)
}

/// Another replica's store on the same database.
async fn open(url: &DatabaseUrl) -> PostgresStore {
    PostgresStore::open(url, 4).await.expect("store opens")
}

/// Polls `probe` every 50 ms until it gives a value; panics after 30 s.
async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(std::time::Instant::now() < until, "not within 30 s: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
