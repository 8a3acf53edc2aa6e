//! Pruning: ids kept for dedupe, bodies for retention, and unfinished work never touched.

use std::time::Duration;

use chrono::{TimeDelta, Utc};

use super::{attempt, attempt_once, deliver_all, detail, event, route, to, Fixture, LEASE};
use crate::store::{DeliveryStart, EventFilter, InsertOutcome, NextStep, PruneStats, StoreError};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Past the dedupe window a finished event is deleted; past retention only its body is
/// dropped, and its id still dedupes; an event with work left keeps everything; an event
/// without its body can no longer be replayed.
pub async fn prune_keeps_ids_for_dedupe_drops_bodies_and_spares_unfinished_work(
    fixture: &dyn Fixture,
) {
    let store = fixture.open().await;
    let ancient = event("ancient", TimeDelta::days(10));
    let old = event("old", TimeDelta::days(3));
    let stuck = event("stuck", TimeDelta::days(10));
    let fresh = event("fresh", TimeDelta::zero());
    for e in [&ancient, &old, &fresh] {
        store.insert(e, to("log")).await.unwrap();
    }
    deliver_all(&*store, "log").await;
    store.insert(&stuck, to("other")).await.unwrap();

    let stats = store.prune(7 * DAY, DAY).await.unwrap();
    assert_eq!(
        stats.events_deleted, 1,
        "only the finished event past the dedupe window"
    );
    assert!(store.event(&ancient.id).await.unwrap().is_none());
    let old_detail = store.event(&old.id).await.unwrap().unwrap();
    assert!(old_detail.body.is_none(), "body dropped after retention");
    assert_eq!(
        store.insert(&old, to("log")).await.unwrap(),
        InsertOutcome::Duplicate,
        "its id is still remembered"
    );
    assert!(store
        .event(&fresh.id)
        .await
        .unwrap()
        .unwrap()
        .body
        .is_some());
    let stuck_detail = store.event(&stuck.id).await.unwrap().unwrap();
    assert!(stuck_detail.body.is_some(), "pending work keeps its body");
    let err = store.replay_event(&old.id, Vec::new()).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

/// With a dedupe window shorter than retention, ids are kept as long as bodies: an event is
/// deleted only once both have passed.
pub async fn ids_are_kept_as_long_as_bodies(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let ancient = event("ancient", TimeDelta::days(10));
    let old = event("old", TimeDelta::days(3));
    for e in [&ancient, &old] {
        store.insert(e, to("log")).await.unwrap();
    }
    deliver_all(&*store, "log").await;

    let stats = store.prune(DAY, 7 * DAY).await.unwrap();
    let expected = PruneStats {
        events_deleted: 1,
        bodies_dropped: 0,
    };
    assert_eq!(stats, expected);
    assert!(store.event(&ancient.id).await.unwrap().is_none());
    assert!(detail(&*store, &old.id).await.body.is_some());
    assert_eq!(
        store.insert(&old, to("log")).await.unwrap(),
        InsertOutcome::Duplicate
    );
}

/// An event whose delivery is in flight or waiting to retry is kept whole, however old.
pub async fn work_in_flight_or_waiting_to_retry_is_never_pruned(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let in_flight = event("inflight", TimeDelta::days(10));
    let waiting = event("waiting", TimeDelta::days(10));
    let handed_over = route("log", "log", DeliveryStart::Claimed(LEASE));
    store.insert(&in_flight, vec![handed_over]).await.unwrap();
    store.insert(&waiting, to("h")).await.unwrap();
    let later = NextStep::RetryAt(Utc::now() + TimeDelta::hours(1));
    attempt_once(&*store, "h", attempt(503, Some("busy")), later).await;

    let stats = store.prune(7 * DAY, DAY).await.unwrap();
    assert_eq!(stats, PruneStats::default());
    for e in [&in_flight, &waiting] {
        assert!(detail(&*store, &e.id).await.body.is_some(), "{}", e.id);
    }
}

/// Dead letters are finished work: past retention their body is dropped, and they stay listed
/// but can no longer be replayed; past the dedupe window they are deleted.
pub async fn a_dead_letter_past_retention_can_no_longer_be_replayed(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let old = event("old", TimeDelta::days(3));
    let ancient = event("ancient", TimeDelta::days(10));
    let mut ids = Vec::new();
    for e in [&old, &ancient] {
        store.insert(e, to("h")).await.unwrap();
        let failure = attempt(500, Some("boom"));
        ids.push(attempt_once(&*store, "h", failure, NextStep::Dead).await);
    }

    let stats = store.prune(7 * DAY, DAY).await.unwrap();
    let expected = PruneStats {
        events_deleted: 1,
        bodies_dropped: 1,
    };
    assert_eq!(stats, expected);
    let dead = store.dead_letters(EventFilter::default()).await.unwrap();
    assert_eq!(dead.iter().map(|d| d.id).collect::<Vec<_>>(), [ids[0]]);
    assert_eq!(store.replay_dead(EventFilter::default()).await.unwrap(), 0);
    let err = store.replay_delivery(ids[0]).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let err = store.replay_event(&old.id, to("h")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.counts().await.unwrap().dead, 1);
}
