//! Finishing attempts: where a delivery goes next, and the history the inspector shows.

use chrono::{DateTime, TimeDelta, Utc};

use super::{attempt, attempt_once, detail, event, outcomes, state, to, Fixture, LEASE};
use crate::store::{DeliveryCounts, EventFilter, NextStep};

/// A delivered attempt finishes the delivery: nothing left to claim or count, and the
/// attempt, with its time, duration and status, in the history.
pub async fn a_delivered_attempt_finishes_its_delivery(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let e = event("m1", TimeDelta::zero());
    store.insert(&e, to("h")).await.unwrap();
    let success = attempt(204, None);
    let started_at = success.started_at;
    attempt_once(&*store, "h", success, NextStep::Delivered).await;

    let detail = detail(&*store, &e.id).await;
    assert_eq!(detail.summary.status, "delivered");
    let delivery = &detail.deliveries[0];
    assert_eq!(state(delivery), ("delivered", 1));
    assert_eq!(delivery.last_error, None);
    assert_eq!(
        outcomes(&detail),
        vec![("delivered".to_string(), Some(204))]
    );
    let recorded = &delivery.history[0];
    assert_eq!(
        recorded.started_at.timestamp_millis(),
        started_at.timestamp_millis()
    );
    assert_eq!((recorded.duration_ms, recorded.error.as_deref()), (3, None));
    assert_eq!(store.counts().await.unwrap(), DeliveryCounts::default());
    assert!(store.claim("h", 10, LEASE).await.unwrap().is_empty());
}

/// A retry records the failed attempt with its error and makes the delivery wait, pending,
/// until the time it names.
pub async fn a_retry_records_the_failure_and_waits_for_its_time(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let e = event("m1", TimeDelta::zero());
    store.insert(&e, to("h")).await.unwrap();
    let at = DateTime::from_timestamp_millis((Utc::now() + TimeDelta::hours(1)).timestamp_millis())
        .unwrap();
    let failure = attempt(503, Some("busy"));
    attempt_once(&*store, "h", failure, NextStep::RetryAt(at)).await;

    let detail = detail(&*store, &e.id).await;
    assert_eq!(detail.summary.status, "pending");
    let delivery = &detail.deliveries[0];
    assert_eq!(state(delivery), ("pending", 1));
    assert_eq!(delivery.due_at, at);
    assert_eq!(delivery.last_error.as_deref(), Some("busy"));
    assert_eq!(outcomes(&detail), vec![("retry".to_string(), Some(503))]);
    assert_eq!(delivery.history[0].error.as_deref(), Some("busy"));
    assert_eq!(store.counts().await.unwrap().pending, 1);
    assert!(store.claim("h", 10, LEASE).await.unwrap().is_empty());
}

/// A dead attempt makes the delivery a dead letter: counted, listed, never claimed again.
pub async fn a_dead_attempt_makes_a_dead_letter(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let e = event("m1", TimeDelta::zero());
    store.insert(&e, to("h")).await.unwrap();
    let failure = attempt(400, Some("rejected"));
    let id = attempt_once(&*store, "h", failure, NextStep::Dead).await;

    let detail = detail(&*store, &e.id).await;
    assert_eq!(detail.summary.status, "dead");
    let delivery = &detail.deliveries[0];
    assert_eq!(delivery.state, "dead");
    assert_eq!(delivery.last_error.as_deref(), Some("rejected"));
    assert_eq!(outcomes(&detail), vec![("dead".to_string(), Some(400))]);
    assert_eq!(store.counts().await.unwrap().dead, 1);
    let dead = store.dead_letters(EventFilter::default()).await.unwrap();
    assert_eq!(dead.iter().map(|d| d.id).collect::<Vec<_>>(), vec![id]);
    assert!(store.claim("h", 10, LEASE).await.unwrap().is_empty());
}

/// The history lists every attempt in order, the success last; a replay keeps it, and the
/// next round adds its own attempts after it.
pub async fn a_success_is_shown_last_in_the_history_and_kept_by_a_replay(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let e = event("m1", TimeDelta::zero());
    store.insert(&e, to("h")).await.unwrap();
    let failed = attempt(503, Some("busy"));
    attempt_once(&*store, "h", failed, NextStep::RetryAt(Utc::now())).await;
    let id = attempt_once(&*store, "h", attempt(200, None), NextStep::Delivered).await;

    let detail = super::detail(&*store, &e.id).await;
    let expected = vec![
        ("retry".to_string(), Some(503)),
        ("delivered".to_string(), Some(200)),
    ];
    assert_eq!(outcomes(&detail), expected);
    assert_eq!(detail.deliveries[0].state, "delivered");
    assert_eq!(detail.deliveries[0].last_error, None);

    store.replay_delivery(id).await.unwrap();
    let replayed = super::detail(&*store, &e.id).await;
    assert_eq!(
        outcomes(&replayed),
        expected,
        "history kept across the replay"
    );
    assert_eq!(replayed.deliveries[0].state, "pending");
    attempt_once(&*store, "h", attempt(202, None), NextStep::Delivered).await;
    let detail = super::detail(&*store, &e.id).await;
    assert_eq!(
        outcomes(&detail),
        vec![
            ("retry".to_string(), Some(503)),
            ("delivered".to_string(), Some(200)),
            ("delivered".to_string(), Some(202)),
        ]
    );
}
