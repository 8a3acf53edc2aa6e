//! Faults: the database going away under the store, and the store coming back by itself.

use std::time::Duration;

use chrono::TimeDelta;

use super::scratch::{Cluster, PASSWORD};
use super::{eventually, DatabaseUrl, PostgresStore};
use crate::store::conformance::{event, stored, to};
use crate::store::{Store, StoreError};

/// A cluster of the test's own (it is stopped and started), a database on it, and its URL.
fn own_cluster() -> (Cluster, DatabaseUrl) {
    let cluster = Cluster::start();
    let url = cluster.url(&cluster.database()).parse().unwrap();
    (cluster, url)
}

#[tokio::test]
async fn the_store_fails_while_the_database_is_down_and_recovers_by_itself() {
    let (cluster, url) = own_cluster();
    let store = PostgresStore::open(&url, 4).await.unwrap();
    let before = event("before", TimeDelta::zero());
    stored(store.insert(&before, to("h")).await.unwrap());
    eventually("the store is available", async || {
        store.is_available().then_some(())
    })
    .await;

    cluster.stop("immediate");
    let during = event("during", TimeDelta::zero());
    let err = store.insert(&during, to("h")).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(!err.to_string().contains(PASSWORD), "{err}");
    let err = store.counts().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    eventually("the store knows it is unavailable", async || {
        (!store.is_available()).then_some(())
    })
    .await;

    cluster.restart();
    let after = event("after", TimeDelta::zero());
    eventually("an insert commits again", async || {
        store.insert(&after, to("h")).await.ok()
    })
    .await;
    eventually("the store is available again", async || {
        store.is_available().then_some(())
    })
    .await;
    for (e, kept) in [(&before, true), (&during, false), (&after, true)] {
        let found = store.event(&e.id).await.unwrap();
        assert_eq!(found.is_some(), kept, "{}", e.id);
    }
}

#[tokio::test]
async fn a_replica_that_starts_before_its_database_waits_for_it() {
    let (cluster, url) = own_cluster();
    cluster.stop("fast");
    let opening = tokio::spawn(async move { PostgresStore::open(&url, 2).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!opening.is_finished(), "it waits");
    cluster.restart();
    let store = opening
        .await
        .unwrap()
        .expect("opens once the database is up");
    stored(
        store
            .insert(&event("m1", TimeDelta::zero()), to("h"))
            .await
            .unwrap(),
    );
}
