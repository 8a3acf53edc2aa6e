//! The schema's versions: replicas that start together migrate once, `hookline migrate` runs
//! alone, and a schema newer than this build is refused.

use std::time::Duration;

use chrono::TimeDelta;
use futures_util::future::join_all;

use super::scratch::Cluster;
use super::{fresh_url, open, open_fresh, PostgresStore};
use crate::store::conformance::order::keyed;
use crate::store::conformance::{attempt, event, stored, LEASE};
use crate::store::postgres::schema::latest;
use crate::store::{NextStep, Store, StoreError};

/// The versions recorded in `schema_migrations` of `url`'s database.
fn recorded_versions(url: &super::DatabaseUrl) -> String {
    let database = url.driver().get_dbname().unwrap();
    Cluster::shared().psql(
        database,
        "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations",
    )
}

#[tokio::test]
async fn replicas_that_start_together_migrate_the_database_once() {
    let url = fresh_url();
    let replicas = join_all((0..4).map(|_| PostgresStore::open(&url, 2))).await;
    for replica in replicas {
        replica.expect("every replica starts");
    }
    let all: Vec<String> = (1..=latest()).map(|v| v.to_string()).collect();
    assert_eq!(recorded_versions(&url), all.join(","));
}

#[tokio::test]
async fn migrate_brings_a_database_up_to_date_and_then_finds_nothing_to_do() {
    let url = fresh_url();
    let first = PostgresStore::migrate(&url).await.unwrap();
    assert_eq!((first.from, first.to), (0, latest()));
    let second = PostgresStore::migrate(&url).await.unwrap();
    assert_eq!((second.from, second.to), (latest(), latest()));
    drop(open(&url).await);
}

#[tokio::test]
async fn a_replica_refuses_a_schema_newer_than_it_knows() {
    let url = fresh_url();
    drop(open(&url).await);
    let database = url.driver().get_dbname().unwrap();
    let future = latest() + 1;
    Cluster::shared().psql(
        database,
        &format!(
            "INSERT INTO schema_migrations (version, name) VALUES ({future}, 'from the future')"
        ),
    );
    let err = PostgresStore::open(&url, 2).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("version {future}, newer")),
        "{message}"
    );
    let err = PostgresStore::migrate(&url).await.unwrap_err();
    assert!(
        err.to_string().contains("newer than this hookline knows"),
        "{err}"
    );
}

/// Deliveries have had no foreign key to events since version 5 (its per-row check was a tenth
/// of the server's CPU at intake): a trigger deletes an event's deliveries, and so their
/// attempts, in the statement that deletes the event, so that none is left pointing at nothing.
#[tokio::test]
async fn pruning_takes_an_events_deliveries_and_attempts_with_it_without_a_foreign_key() {
    let (store, url) = open_fresh().await;
    let old = event("old", TimeDelta::days(30));
    let kept = event("kept", TimeDelta::zero());
    for e in [&old, &kept] {
        stored(
            store
                .insert(e, vec![keyed("r", None, false)])
                .await
                .unwrap(),
        );
    }
    for claimed in store.claim("h", 10, LEASE).await.unwrap() {
        let failed = attempt(500, Some("down"));
        store
            .finish(claimed.delivery_id, failed, NextStep::Dead)
            .await
            .unwrap();
    }
    let count = |sql: &str| -> i64 {
        let database = url.driver().get_dbname().unwrap();
        Cluster::shared()
            .psql(database, sql)
            .trim()
            .parse()
            .unwrap()
    };
    let foreign_keys = "SELECT count(*) FROM pg_constraint
                        WHERE conrelid = 'deliveries'::regclass AND confrelid = 'events'::regclass";
    assert_eq!(count(foreign_keys), 0);
    assert_eq!(count("SELECT count(*) FROM attempts"), 2);

    let day = Duration::from_secs(24 * 3600);
    assert_eq!(store.prune(day, day).await.unwrap().events_deleted, 1);
    assert_eq!(count("SELECT count(*) FROM deliveries"), 1);
    assert_eq!(count("SELECT count(*) FROM attempts"), 1);
    let orphans = "SELECT count(*) FROM deliveries d
                   WHERE NOT EXISTS (SELECT FROM events e WHERE e.seq = d.event_seq)";
    assert_eq!(count(orphans), 0);
    assert!(store.event(&kept.id).await.unwrap().is_some());
}

/// Since version 6 a body large enough to be compressed is compressed with lz4 (pglz was an
/// eighth of the server's CPU at intake), and reads back byte for byte.
#[tokio::test]
async fn a_large_body_is_stored_in_lz4_and_reads_back_unchanged() {
    let (store, url) = open_fresh().await;
    let mut large = event("large", TimeDelta::zero());
    let text: String = (0..400)
        .map(|n| format!("{{\"line\":{n},\"text\":\"hello\"}},"))
        .collect();
    large.body = bytes::Bytes::from(format!("[{text}{{}}]"));
    stored(store.insert(&large, Vec::new()).await.unwrap());

    let database = url.driver().get_dbname().unwrap();
    let method = Cluster::shared().psql(
        database,
        "SELECT pg_column_compression(body) FROM events WHERE provider_id = 'large'",
    );
    assert_eq!(method.trim(), "lz4");
    let read = store.event(&large.id).await.unwrap().expect("stored");
    assert_eq!(
        read.body.as_deref().map(str::as_bytes),
        Some(&large.body[..])
    );
}
