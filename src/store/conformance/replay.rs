//! Replays: a finished delivery, an event or a filtered set of dead letters made due again
//! with a fresh retry budget, their history kept.

use chrono::{TimeDelta, Utc};

use super::{
    attempt, attempt_once, detail, envelope, event, on_route, route, state, stored, to, Fixture,
    BETA, LEASE,
};
use crate::envelope::Source;
use crate::store::{DeliveryStart, EventFilter, NextStep, StoreError};

/// A replayed dead letter is pending again and due now; its next claim is attempt 1 of a new
/// budget, and its history keeps the attempts before the replay.
pub async fn a_replayed_dead_letter_starts_again_with_a_fresh_budget(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let e = event("m1", TimeDelta::zero());
    store.insert(&e, to("h")).await.unwrap();
    let failure = attempt(500, Some("boom"));
    let id = attempt_once(&*store, "h", failure, NextStep::Dead).await;

    let replayed_at = Utc::now() - TimeDelta::milliseconds(1);
    store.replay_delivery(id).await.unwrap();
    let delivery = &detail(&*store, &e.id).await.deliveries[0];
    assert_eq!(state(delivery), ("pending", 0));
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.pending, counts.dead), (1, 0));
    let claimed = store.claim("h", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempt, 1);
    assert!(claimed[0].since >= replayed_at, "a new budget starts");
    let history = &detail(&*store, &e.id).await.deliveries[0].history;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].outcome, "dead");
}

/// Replaying a delivery or an event that does not exist is `NotFound`.
pub async fn replays_of_what_does_not_exist_are_not_found(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let err = store.replay_delivery(4242).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let err = store
        .replay_event("evt_al_nope", to("h"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(store.event("evt_al_nope").await.unwrap().is_none());
}

/// A delivery being attempted right now cannot be replayed: `Conflict`, and it stays as it is.
pub async fn a_delivery_in_flight_cannot_be_replayed(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let e = event("m1", TimeDelta::zero());
    let ids = stored(store.insert(&e, to("h")).await.unwrap());
    store.claim("h", 1, LEASE).await.unwrap();
    let err = store.replay_delivery(ids[0]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let delivery = &detail(&*store, &e.id).await.deliveries[0];
    assert_eq!(state(delivery), ("inflight", 1));
}

/// Replaying an event makes its finished deliveries due again and creates, pending, those of
/// the given routes it lacks (a route it has is not created twice); it counts both.
pub async fn replaying_an_event_creates_the_deliveries_of_routes_it_lacks(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let e = event("m1", TimeDelta::zero());
    store.insert(&e, to("h")).await.unwrap();
    attempt_once(&*store, "h", attempt(200, None), NextStep::Delivered).await;

    let routes = vec![
        route("h", "h", DeliveryStart::Pending),
        route("new", "g", DeliveryStart::Pending),
    ];
    assert_eq!(store.replay_event(&e.id, routes).await.unwrap(), 2);
    let detail = detail(&*store, &e.id).await;
    let mut routes: Vec<_> = detail
        .deliveries
        .iter()
        .map(|d| (d.route.as_str(), d.handler.as_str(), d.state.as_str()))
        .collect();
    routes.sort();
    assert_eq!(routes, [("h", "h", "pending"), ("new", "g", "pending")]);
    for handler in ["h", "g"] {
        let claimed = store.claim(handler, 10, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 1, "{handler}");
        assert_eq!(claimed[0].attempt, 1, "{handler}");
    }
}

/// Replaying an event leaves a delivery in flight alone: its worker is still at it.
pub async fn replaying_an_event_leaves_deliveries_in_flight_alone(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let e = event("m1", TimeDelta::zero());
    let routes = vec![
        route("busy", "g", DeliveryStart::Claimed(LEASE)),
        route("failed", "h", DeliveryStart::Pending),
    ];
    store.insert(&e, routes).await.unwrap();
    attempt_once(&*store, "h", attempt(500, None), NextStep::Dead).await;

    assert_eq!(store.replay_event(&e.id, Vec::new()).await.unwrap(), 1);
    let detail = detail(&*store, &e.id).await;
    assert_eq!(state(on_route(&detail, "busy")), ("inflight", 1));
    assert_eq!(state(on_route(&detail, "failed")), ("pending", 0));
}

/// `replay_dead` replays the dead letters every field of its filter matches (source, type,
/// route, time), returns how many, and refuses a filter by status.
pub async fn replay_dead_replays_the_dead_letters_a_filter_matches(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let alpha = Source::new(&super::ALPHA);
    let beta = Source::new(&BETA);
    let now = Utc::now();
    let letters = [
        (envelope(alpha, "e1", "A", now, None), "r1"),
        (envelope(beta, "e2", "A", now, None), "r2"),
        (
            envelope(alpha, "e3", "B", now - TimeDelta::hours(2), None),
            "r1",
        ),
        (envelope(alpha, "e4", "A", now, None), "r1"),
    ];
    for (e, route_name) in &letters {
        let delivery = route(route_name, "h", DeliveryStart::Pending);
        store.insert(e, vec![delivery]).await.unwrap();
        attempt_once(&*store, "h", attempt(500, None), NextStep::Dead).await;
    }

    let matching =
        |source: Option<&str>, event_type: Option<&str>, on_route: Option<&str>| EventFilter {
            source: source.map(str::to_owned),
            event_type: event_type.map(str::to_owned),
            route: on_route.map(str::to_owned),
            ..EventFilter::default()
        };
    let by_status = EventFilter {
        status: Some("dead".into()),
        ..EventFilter::default()
    };
    let err = store.replay_dead(by_status).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let e1_and_e4 = matching(Some("alpha"), Some("A"), Some("r1"));
    assert_eq!(store.replay_dead(e1_and_e4).await.unwrap(), 2);
    let e3 = EventFilter {
        until: Some(now - TimeDelta::hours(1)),
        ..EventFilter::default()
    };
    assert_eq!(store.replay_dead(e3).await.unwrap(), 1);
    assert_eq!(
        store
            .replay_dead(matching(Some("beta"), None, None))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.replay_dead(EventFilter::default()).await.unwrap(), 0);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.pending, counts.dead), (4, 0));
}
