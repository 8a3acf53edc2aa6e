//! Claims: which deliveries a handler's worker gets, how attempts are counted, leases, and
//! making waiting retries due now.

use std::time::Duration;

use chrono::{TimeDelta, Utc};

use super::{attempt, event, insert_pending, to, Fixture, LEASE};
use crate::store::{Leases, NextStep, Store};

/// Records a failed attempt of `delivery_id`, to be retried `in_` from now (in the past when
/// negative).
async fn retry(store: &dyn Store, delivery_id: i64, in_: TimeDelta) {
    let failure = attempt(503, Some("busy"));
    let next = NextStep::RetryAt(Utc::now() + in_);
    store.finish(delivery_id, failure, next).await.unwrap();
}

/// A claim takes the due deliveries of its handler only: not another handler's, not one
/// waiting for its retry time.
pub async fn claims_take_only_due_deliveries_of_their_handler(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let id = insert_pending(&*store, "a", "h").await;
    let other = insert_pending(&*store, "b", "g").await;

    assert!(store.claim("nobody", 10, LEASE).await.unwrap().is_empty());
    let claimed = store.claim("h", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery_id, id);
    assert_eq!(claimed[0].route, "h");
    retry(&*store, id, TimeDelta::hours(1)).await;
    assert!(
        store.claim("h", 10, LEASE).await.unwrap().is_empty(),
        "waiting for its retry time"
    );
    let claimed = store.claim("g", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery_id, other);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.pending, counts.inflight), (1, 1));
}

/// A claim takes at most `limit` deliveries, those that have been due longest first.
pub async fn claims_take_at_most_their_limit_longest_due_first(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    for n in 0..3 {
        insert_pending(&*store, &format!("m{n}"), "h").await;
    }
    let first = store.claim("h", 2, LEASE).await.unwrap();
    assert_eq!(first.len(), 2);
    let rest = store.claim("h", 2, LEASE).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert!(store.claim("h", 2, LEASE).await.unwrap().is_empty());

    // Due 1, 3 and 2 minutes ago: claimed 3, 2, then 1.
    let ids = [
        first[0].delivery_id,
        first[1].delivery_id,
        rest[0].delivery_id,
    ];
    for (id, minutes) in ids.iter().zip([1, 3, 2]) {
        retry(&*store, *id, TimeDelta::minutes(-minutes)).await;
    }
    for expected in [ids[1], ids[2], ids[0]] {
        let claimed = store.claim("h", 1, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].delivery_id, expected);
    }
}

/// Every claim is an attempt: the first is 1, each retry adds one, and `since` stays the
/// delivery's creation until a replay.
pub async fn attempts_count_every_claim_since_creation(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let before = Utc::now() - TimeDelta::milliseconds(1);
    let id = insert_pending(&*store, "a", "h").await;
    let after = Utc::now() + TimeDelta::milliseconds(1);

    let first = store.claim("h", 1, LEASE).await.unwrap();
    assert_eq!(first[0].attempt, 1);
    assert!(
        before <= first[0].since && first[0].since <= after,
        "{before} <= {} <= {after}",
        first[0].since
    );
    retry(&*store, id, TimeDelta::zero()).await;
    let second = store.claim("h", 1, LEASE).await.unwrap();
    assert_eq!(second[0].attempt, 2);
    assert_eq!(second[0].since, first[0].since);
    let e = event("a", TimeDelta::zero());
    assert_eq!(
        super::detail(&*store, &e.id).await.deliveries[0].attempts,
        2
    );
}

/// A lease that has run out (its worker died or hung) is released and its attempt counted;
/// a fresh one is kept. At start-up an expired lease is released by every store, and the fresh
/// ones too by a store that one process uses at a time (nothing can be running yet), never by
/// one that replicas share (they belong to deliveries running elsewhere).
///
/// (The rule said "at start-up every lease is released" while SQLite was the only store; that
/// holds only where one process uses the store.)
pub async fn expired_leases_are_released_and_fresh_ones_kept(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    insert_pending(&*store, "a", "h").await;
    insert_pending(&*store, "b", "g").await;
    assert_eq!(store.claim("h", 10, Duration::ZERO).await.unwrap().len(), 1);
    assert_eq!(
        store
            .claim("g", 10, Duration::from_secs(600))
            .await
            .unwrap()
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(store.release_leases(Leases::Expired).await.unwrap(), 1);
    let again = store.claim("h", 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2, "the lost attempt counts");
    assert!(store
        .claim("g", 10, Duration::from_secs(60))
        .await
        .unwrap()
        .is_empty());

    insert_pending(&*store, "c", "f").await;
    assert_eq!(store.claim("f", 10, Duration::ZERO).await.unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh = if fixture.shared() { 0 } else { 2 };
    assert_eq!(
        store.release_leases(Leases::LeftAtStart).await.unwrap(),
        1 + fresh
    );
}

/// Expedite makes the pending deliveries of one handler that wait for a later retry time due
/// now, and counts only those it moved.
pub async fn expedite_makes_a_handlers_waiting_retries_due_now(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let waiting = insert_pending(&*store, "a", "h").await;
    let due = insert_pending(&*store, "b", "h").await;
    let other = insert_pending(&*store, "c", "g").await;
    assert_eq!(store.claim("h", 10, LEASE).await.unwrap().len(), 2);
    assert_eq!(store.claim("g", 10, LEASE).await.unwrap().len(), 1);
    retry(&*store, waiting, TimeDelta::hours(1)).await;
    retry(&*store, due, TimeDelta::seconds(-1)).await;
    retry(&*store, other, TimeDelta::hours(1)).await;

    assert_eq!(store.expedite("h").await.unwrap(), 1);
    assert_eq!(store.claim("h", 10, LEASE).await.unwrap().len(), 2);
    assert!(
        store.claim("g", 10, LEASE).await.unwrap().is_empty(),
        "another handler's retries keep waiting"
    );
    assert_eq!(store.expedite("g").await.unwrap(), 1);
    assert_eq!(store.claim("g", 10, LEASE).await.unwrap().len(), 1);
}

/// A claimed delivery carries its event exactly as it was stored.
pub async fn claimed_events_are_read_back_as_they_were_stored(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let original = event("m1", TimeDelta::zero());
    store.insert(&original, to("log")).await.unwrap();
    let claimed = store
        .claim("log", 1, Duration::from_secs(60))
        .await
        .unwrap();
    let stored = &claimed[0].event;
    assert_eq!(stored.source, original.source.as_str());
    assert_eq!(stored.provider_id, original.provider_id);
    assert_eq!(stored.event_type, "store.created");
    assert_eq!(
        stored.received_at.timestamp_millis(),
        original.received_at.timestamp_millis()
    );
    assert_eq!(stored.body, original.body);
    assert_eq!(stored.endpoint, original.endpoint);
    assert_eq!(stored.decode_error, original.decode_error);
}
