//! Ordered routes: a delivery that holds a key is claimed only when no earlier delivery of its
//! route and key is open, a dead one blocks its key as its route says, and the blocked keys
//! can be listed and skipped (docs/ordering.md).

use chrono::{TimeDelta, Utc};

use std::time::Duration;

use super::{about, attempt, event, stored, Fixture, LEASE};
use crate::store::{DeliveryStart, NewDelivery, NextStep, OrderKey, Store, StoreError};

/// A delivery of route `route` to handler `h` holding `key` (unordered when `None`); a dead
/// one blocks its key when `blocks`.
pub fn keyed(route: &str, key: Option<&str>, blocks: bool) -> NewDelivery {
    NewDelivery {
        route: route.into(),
        handler: "h".into(),
        start: DeliveryStart::Pending,
        order: key.map(|key| OrderKey {
            key: key.into(),
            blocks,
        }),
    }
}

/// Stores an event (`provider_id`) with deliveries of `routes`, each holding `key`; returns
/// their ids.
async fn insert(
    store: &dyn Store,
    provider_id: &str,
    routes: &[&str],
    key: Option<&str>,
    blocks: bool,
) -> Vec<i64> {
    let e = about(provider_id, "c1", None);
    let deliveries = routes.iter().map(|r| keyed(r, key, blocks)).collect();
    stored(store.insert(&e, deliveries).await.unwrap())
}

/// The ids a claim of handler `h` takes, sorted.
async fn claim(store: &dyn Store) -> Vec<i64> {
    let mut ids: Vec<i64> = store
        .claim("h", 100, LEASE)
        .await
        .unwrap()
        .iter()
        .map(|c| c.delivery_id)
        .collect();
    ids.sort_unstable();
    ids
}

/// Records an attempt of `id` that leads to `next`.
async fn finish(store: &dyn Store, id: i64, next: NextStep) {
    let record = match next {
        NextStep::Delivered => attempt(200, None),
        _ => attempt(503, Some("busy")),
    };
    store.finish(id, record, next).await.unwrap();
}

/// Deliveries of one key go one at a time, in the order of their events; other keys, other
/// routes and unordered deliveries go at the same time. A claim says which it took are
/// ordered.
pub async fn one_key_is_claimed_one_delivery_at_a_time_in_event_order(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let a1 = insert(&*store, "m1", &["r", "s"], Some("a"), true).await;
    let a2 = insert(&*store, "m2", &["r", "s"], Some("a"), true).await;
    let a3 = insert(&*store, "m3", &["r"], Some("a"), true).await;
    let b1 = insert(&*store, "m4", &["r"], Some("b"), true).await;
    let free = insert(&*store, "m5", &["r"], None, true).await;

    let claimed = store.claim("h", 100, LEASE).await.unwrap();
    let mut ids: Vec<i64> = claimed.iter().map(|c| c.delivery_id).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec![a1[0], a1[1], b1[0], free[0]],
        "the head of each route and key"
    );
    for c in &claimed {
        assert_eq!(
            c.ordered,
            c.delivery_id != free[0],
            "delivery {}",
            c.delivery_id
        );
    }
    assert!(
        claim(&*store).await.is_empty(),
        "heads in flight hold back the rest"
    );
    finish(&*store, a1[0], NextStep::Delivered).await;
    assert_eq!(claim(&*store).await, vec![a2[0]], "route r's next of key a");
    finish(&*store, a2[0], NextStep::Delivered).await;
    finish(&*store, a1[1], NextStep::Delivered).await;
    assert_eq!(claim(&*store).await, vec![a2[1], a3[0]]);
}

/// A head waiting out a retry holds back its key, and only its key; made due, it goes before
/// the rest of its key.
pub async fn a_head_waiting_for_its_retry_holds_back_only_its_key(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let a1 = insert(&*store, "m1", &["r"], Some("a"), true).await[0];
    let a2 = insert(&*store, "m2", &["r"], Some("a"), true).await[0];
    let b1 = insert(&*store, "m3", &["r"], Some("b"), true).await[0];
    let b2 = insert(&*store, "m4", &["r"], Some("b"), true).await[0];

    assert_eq!(claim(&*store).await, vec![a1, b1]);
    finish(
        &*store,
        a1,
        NextStep::RetryAt(Utc::now() + TimeDelta::hours(1)),
    )
    .await;
    finish(&*store, b1, NextStep::Delivered).await;
    assert_eq!(
        claim(&*store).await,
        vec![b2],
        "key a waits for its head's retry"
    );
    store.expedite("h").await.unwrap();
    assert_eq!(
        claim(&*store).await,
        vec![a1],
        "the head goes again, not a2"
    );
    finish(&*store, a1, NextStep::Delivered).await;
    assert_eq!(claim(&*store).await, vec![a2]);
}

/// A dead head of a route whose dead letters block holds back its key: it is listed, with how
/// many wait behind it, and counted for metrics with the oldest delivery it holds back;
/// skipping it lets the next go (and it stays a dead letter).
pub async fn a_dead_head_blocks_its_key_until_skipped(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let before = Utc::now() - TimeDelta::milliseconds(1);
    let a1 = insert(&*store, "m1", &["r"], Some("a"), true).await[0];
    let a2 = insert(&*store, "m2", &["r"], Some("a"), true).await[0];
    let a3 = insert(&*store, "m3", &["r"], Some("a"), true).await[0];
    let b1 = insert(&*store, "m4", &["r"], Some("b"), true).await[0];

    assert_eq!(claim(&*store).await, vec![a1, b1]);
    finish(&*store, a1, NextStep::Dead).await;
    finish(&*store, b1, NextStep::Delivered).await;
    assert!(claim(&*store).await.is_empty(), "key a is blocked");

    let blocked = store.blocked_keys().await.unwrap();
    assert_eq!(blocked.len(), 1);
    let key = &blocked[0];
    assert_eq!((key.route.as_str(), key.key.as_str()), ("r", "a"));
    assert_eq!((key.head, key.waiting), (a1, 2));
    assert_eq!(key.event_id, about("m1", "c1", None).id);
    assert!(key.since >= before);
    let routes = store.ordered_routes().await.unwrap();
    assert_eq!(routes.len(), 1);
    assert_eq!((routes[0].route.as_str(), routes[0].blocked_keys), ("r", 1));
    assert!(routes[0].oldest_held_since.is_some_and(|t| t >= before));

    let err = store.skip_blocked(a2).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(_)),
        "a2 blocks nothing: {err}"
    );
    store.skip_blocked(a1).await.unwrap();
    assert!(store.blocked_keys().await.unwrap().is_empty());
    assert_eq!(claim(&*store).await, vec![a2]);
    let err = store.skip_blocked(a1).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(_)),
        "skipped already: {err}"
    );
    assert_eq!(store.counts().await.unwrap().dead, 1, "still a dead letter");
    finish(&*store, a2, NextStep::Delivered).await;
    assert_eq!(claim(&*store).await, vec![a3]);
}

/// A dead head that is replayed goes again before the deliveries it held back.
pub async fn a_replayed_dead_head_goes_before_the_rest_of_its_key(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let a1 = insert(&*store, "m1", &["r"], Some("a"), true).await[0];
    let a2 = insert(&*store, "m2", &["r"], Some("a"), true).await[0];
    assert_eq!(claim(&*store).await, vec![a1]);
    finish(&*store, a1, NextStep::Dead).await;
    store.replay_delivery(a1).await.unwrap();
    assert!(
        store.blocked_keys().await.unwrap().is_empty(),
        "pending again"
    );
    assert_eq!(claim(&*store).await, vec![a1]);
    finish(&*store, a1, NextStep::Delivered).await;
    assert_eq!(claim(&*store).await, vec![a2]);
}

/// A dead head of a route whose dead letters do not block lets the next go at once, and no
/// key is listed as blocked.
pub async fn a_dead_head_that_does_not_block_lets_the_next_go(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let a1 = insert(&*store, "m1", &["r"], Some("a"), false).await[0];
    let a2 = insert(&*store, "m2", &["r"], Some("a"), false).await[0];
    assert_eq!(claim(&*store).await, vec![a1]);
    finish(&*store, a1, NextStep::Dead).await;
    assert_eq!(claim(&*store).await, vec![a2]);
    assert!(store.blocked_keys().await.unwrap().is_empty());
    let err = store.skip_blocked(a1).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(store.ordered_routes().await.unwrap().is_empty());
}

/// A long queue behind each of two keys drains one delivery per key at a time, in event
/// order, whichever way each head ends: delivered, or dead on a route whose dead letters do
/// not block.
pub async fn long_queues_drain_in_order_however_their_heads_end(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let mut queues: Vec<Vec<i64>> = vec![Vec::new(), Vec::new()];
    for n in 0..40 {
        let key = ["a", "b"][n % 2];
        let id = insert(&*store, &format!("m{n}"), &["r"], Some(key), false).await[0];
        queues[n % 2].push(id);
    }
    for round in 0..20 {
        let heads = vec![queues[0][round], queues[1][round]];
        assert_eq!(claim(&*store).await, heads, "round {round}");
        let ends = [NextStep::Delivered, NextStep::Dead];
        finish(&*store, heads[0], ends[round % 2]).await;
        finish(&*store, heads[1], ends[(round + 1) % 2]).await;
    }
    assert!(claim(&*store).await.is_empty());
}

/// Pruning a dead letter that blocks its key (past the dedupe window) lets the next of the
/// key go, as skipping it would.
pub async fn pruning_a_dead_head_that_blocks_lets_the_next_go(fixture: &dyn Fixture) {
    const DAY: Duration = Duration::from_secs(24 * 3600);
    let store = fixture.open().await;
    let old = event("old", TimeDelta::days(10));
    let a1 = stored(
        store
            .insert(&old, vec![keyed("r", Some("a"), true)])
            .await
            .unwrap(),
    )[0];
    let a2 = insert(&*store, "m2", &["r"], Some("a"), true).await[0];
    assert_eq!(claim(&*store).await, vec![a1]);
    finish(&*store, a1, NextStep::Dead).await;
    assert!(claim(&*store).await.is_empty(), "a1 blocks key a");

    let stats = store.prune(7 * DAY, 7 * DAY).await.unwrap();
    assert_eq!(stats.events_deleted, 1, "the dead head's event");
    assert_eq!(claim(&*store).await, vec![a2]);
}

/// Keys survive reopening the store: a restart keeps the order.
pub async fn keys_survive_reopening(fixture: &dyn Fixture) {
    let (a1, a2) = {
        let store = fixture.open().await;
        let a1 = insert(&*store, "m1", &["r"], Some("a"), true).await[0];
        let a2 = insert(&*store, "m2", &["r"], Some("a"), true).await[0];
        assert_eq!(claim(&*store).await, vec![a1]);
        (a1, a2)
    };
    let store = fixture.open().await;
    assert!(claim(&*store).await.is_empty(), "a1's lease holds key a");
    if !fixture.shared() {
        store
            .release_leases(crate::store::Leases::LeftAtStart)
            .await
            .unwrap();
        assert_eq!(claim(&*store).await, vec![a1], "a1 again, not a2");
        finish(&*store, a1, NextStep::Delivered).await;
        assert_eq!(claim(&*store).await, vec![a2]);
    }
}
