//! Ordered routes on a store that replicas share: the deliveries behind the head of their key
//! are held out of claims, within one batch as across batches, and the next delivery of a key
//! is let go whichever way a finish of its head and an insert of the key on two replicas
//! interleave (both take the key's lock: see `store/postgres/order.rs`).

use chrono::TimeDelta;
use futures_util::future::join_all;

use super::scratch::Cluster;
use super::{open, open_fresh, DatabaseUrl, PostgresStore};
use crate::store::conformance::order::keyed;
use crate::store::conformance::{attempt, event, stored, LEASE};
use crate::store::{NextStep, Store};

/// How many deliveries of `url`'s database are held back.
fn held(url: &DatabaseUrl) -> i64 {
    let database = url.driver().get_dbname().unwrap();
    let count = Cluster::shared().psql(database, "SELECT count(*) FROM deliveries WHERE held");
    count.trim().parse().unwrap()
}

/// Claims the one delivery of `h` that may go, and records it delivered; returns its event's
/// provider id, or `None` when nothing may go.
async fn deliver_one(store: &PostgresStore) -> Option<String> {
    let claimed = store.claim("h", 10, LEASE).await.unwrap();
    assert!(claimed.len() <= 1, "one key, one at a time: {claimed:?}");
    let one = claimed.into_iter().next()?;
    let done = attempt(200, None);
    store
        .finish(one.delivery_id, done, NextStep::Delivered)
        .await
        .unwrap();
    Some(one.event.provider_id)
}

#[tokio::test]
async fn deliveries_behind_the_head_of_their_key_are_held_in_a_batch_and_across_batches() {
    let (store, url) = open_fresh().await;
    let events: Vec<_> = (0..50)
        .map(|n| event(&format!("m{n:02}"), TimeDelta::zero()))
        .collect();
    // At once, so that the writer commits several in one statement.
    for outcome in join_all(
        events
            .iter()
            .map(|e| store.insert(e, vec![keyed("r", Some("a"), true)])),
    )
    .await
    {
        stored(outcome.unwrap());
    }
    assert_eq!(held(&url), 49, "all but the head of key a");
    let mut delivered = Vec::new();
    while let Some(provider_id) = deliver_one(&store).await {
        delivered.push(provider_id);
    }
    assert_eq!(delivered.len(), 50, "{delivered:?}");
    assert_eq!(held(&url), 0);
}

/// Each round, one replica records the head of key a delivered while the other stores the
/// key's next event, both at once; the next round must find that event free to go. A new
/// delivery held back by a head whose finish did not see it would stop the key for good.
#[tokio::test]
async fn a_key_keeps_flowing_while_two_replicas_finish_and_insert_it_at_once() {
    let (a, url) = open_fresh().await;
    let b = open(&url).await;
    stored(
        a.insert(
            &event("m0", TimeDelta::zero()),
            vec![keyed("r", Some("a"), true)],
        )
        .await
        .unwrap(),
    );
    for round in 1..=150 {
        let claimed = b.claim("h", 10, LEASE).await.unwrap();
        assert_eq!(
            claimed.len(),
            1,
            "round {round}: the key's head, free to go"
        );
        let head = claimed[0].delivery_id;
        let next = event(&format!("m{round}"), TimeDelta::zero());
        let (finished, inserted) = tokio::join!(
            b.finish(head, attempt(200, None), NextStep::Delivered),
            a.insert(&next, vec![keyed("r", Some("a"), true)])
        );
        finished.unwrap();
        stored(inserted.unwrap());
    }
    assert_eq!(deliver_one(&a).await.as_deref(), Some("m150"));
    assert_eq!(held(&url), 0);
}

/// A database at version 3 (versions 4 and 5 undone) with deliveries queued behind a key:
/// migration 4 holds them back.
#[tokio::test]
async fn migrating_from_version_3_holds_back_what_waits_behind_a_head() {
    let (store, url) = open_fresh().await;
    for n in 0..3 {
        let e = event(&format!("m{n}"), TimeDelta::zero());
        stored(
            store
                .insert(&e, vec![keyed("r", Some("a"), true)])
                .await
                .unwrap(),
        );
    }
    drop(store);
    let database = url.driver().get_dbname().unwrap();
    Cluster::shared().psql(
        database,
        "DROP INDEX deliveries_ready; ALTER TABLE deliveries DROP COLUMN held;
         DROP TRIGGER events_deleted ON events; DROP FUNCTION hookline_delete_deliveries();
         DELETE FROM schema_migrations WHERE version >= 4;",
    );
    let store = open(&url).await;
    assert_eq!(held(&url), 2);
    assert_eq!(deliver_one(&store).await.as_deref(), Some("m0"));
    assert_eq!(held(&url), 1);
}
