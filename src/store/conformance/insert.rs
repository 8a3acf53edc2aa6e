//! Inserting events: deliveries per route in the state intake asks for, dedupe, durability.

use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use futures_util::future::join_all;

use super::{detail, event, route, state, stored, to, Fixture, BETA, LEASE};
use crate::envelope::Source;
use crate::store::{DeliveryCounts, DeliveryStart, InsertOutcome, Leases, SuccessRecord};

/// An insert creates one delivery per route, pending, and returns their ids in the order the
/// routes were given; the event reads back as it was stored.
pub async fn an_event_is_stored_with_one_delivery_per_route(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let e = event("m1", TimeDelta::zero());
    let routes = [("all", "log"), ("crm", "forward"), ("audit", "log")];
    let deliveries = routes
        .iter()
        .map(|(r, h)| route(r, h, DeliveryStart::Pending))
        .collect();
    let ids = stored(store.insert(&e, deliveries).await.unwrap());
    assert_eq!(ids.len(), 3);

    let detail = detail(&*store, &e.id).await;
    for (id, (route, handler)) in ids.iter().zip(routes) {
        let delivery = detail
            .deliveries
            .iter()
            .find(|d| d.id == *id)
            .unwrap_or_else(|| panic!("delivery {id} of route {route}"));
        assert_eq!(
            (delivery.route.as_str(), delivery.handler.as_str()),
            (route, handler)
        );
        assert_eq!(delivery.event_id, e.id);
        assert_eq!(state(delivery), ("pending", 0));
        assert!(delivery.history.is_empty());
    }
    let summary = &detail.summary;
    assert_eq!(summary.id, e.id);
    assert_eq!(summary.source, "alpha");
    assert_eq!(summary.endpoint, e.endpoint);
    assert_eq!(summary.provider_id, "m1");
    assert_eq!(summary.event_type, "store.created");
    assert_eq!(
        summary.received_at.timestamp_millis(),
        e.received_at.timestamp_millis()
    );
    assert_eq!(summary.decode_error, None);
    assert_eq!(summary.status, "pending");
    assert_eq!(detail.body.as_deref().map(str::as_bytes), Some(&e.body[..]));
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.pending, 3);
}

/// An event no route matched is stored all the same, with no delivery.
pub async fn an_event_without_routes_is_stored_unrouted(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let e = event("m1", TimeDelta::zero());
    assert_eq!(
        store.insert(&e, Vec::new()).await.unwrap(),
        InsertOutcome::Stored {
            delivery_ids: Vec::new()
        }
    );
    let detail = detail(&*store, &e.id).await;
    assert_eq!(detail.summary.status, "unrouted");
    assert!(detail.deliveries.is_empty());
    assert_eq!(store.counts().await.unwrap(), DeliveryCounts::default());
}

/// An event seen before is reported as a duplicate, and nothing of the second insert is
/// written: not its deliveries either.
pub async fn a_second_insert_of_an_event_is_a_duplicate_and_writes_nothing(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let e = event("m1", TimeDelta::zero());
    stored(store.insert(&e, to("log")).await.unwrap());
    let again = event("m1", TimeDelta::zero());
    assert_eq!(
        store.insert(&again, to("other")).await.unwrap(),
        InsertOutcome::Duplicate
    );
    let detail = detail(&*store, &e.id).await;
    assert_eq!(detail.deliveries.len(), 1);
    assert_eq!(detail.deliveries[0].handler, "log");
    assert!(store.claim("other", 10, LEASE).await.unwrap().is_empty());
    assert_eq!(store.counts().await.unwrap().pending, 1);
}

/// Two inserts of one event at the same moment (likely committed together) store it once.
pub async fn duplicates_are_detected_even_within_one_batch(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let (first, second) = (
        event("m1", TimeDelta::zero()),
        event("m1", TimeDelta::zero()),
    );
    let (a, b) = tokio::join!(
        store.insert(&first, to("log")),
        store.insert(&second, to("log")),
    );
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| *o == InsertOutcome::Duplicate);
    assert!(matches!(outcomes[0], InsertOutcome::Stored { .. }));
    assert_eq!(outcomes[1], InsertOutcome::Duplicate);
    assert_eq!(store.counts().await.unwrap().pending, 1);
}

/// Many inserts at once, several of each event, store every event exactly once.
pub async fn concurrent_inserts_store_each_event_exactly_once(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let events: Vec<_> = (0..60)
        .map(|n| event(&format!("m{}", n % 20), TimeDelta::zero()))
        .collect();
    let outcomes = join_all(events.iter().map(|e| store.insert(e, to("log")))).await;
    let stored = outcomes
        .into_iter()
        .filter(|o| matches!(o.as_ref().unwrap(), InsertOutcome::Stored { .. }))
        .count();
    assert_eq!(stored, 20);
    assert_eq!(store.counts().await.unwrap().pending, 20);
}

/// Dedupe is per source: another provider's event with the same id is another event.
pub async fn the_same_provider_id_from_another_source_is_another_event(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let alpha = event("m1", TimeDelta::zero());
    let beta = super::envelope(Source::new(&BETA), "m1", "x", Utc::now(), None);
    assert_ne!(alpha.id, beta.id);
    stored(store.insert(&alpha, to("log")).await.unwrap());
    stored(store.insert(&beta, to("log")).await.unwrap());
    assert_eq!(detail(&*store, &beta.id).await.summary.source, "beta");
}

/// What an insert committed is there after the store is closed and opened again, and its id is
/// still remembered.
pub async fn committed_events_survive_reopening(fixture: &dyn Fixture) {
    let id = {
        let store = fixture.open().await;
        let e = event("m1", TimeDelta::zero());
        store.insert(&e, to("log")).await.unwrap();
        e.id
    };
    let store = fixture.open().await;
    let detail = store.event(&id).await.unwrap().expect("still there");
    assert_eq!(detail.summary.status, "pending");
    assert!(detail.body.unwrap().contains("store.created"));
    assert_eq!(
        store
            .insert(&event("m1", TimeDelta::zero()), to("log"))
            .await
            .unwrap(),
        InsertOutcome::Duplicate
    );
}

/// A delivery intake hands over directly starts in flight as its first attempt, leased like a
/// claim: nobody else claims it, and it goes back to the queue like any claimed delivery.
///
/// (The lost hand-over used to be put back by releasing every lease, as a start-up does; a
/// store that replicas share releases only expired leases then, so one with an expired lease
/// stands for it, and the start-up release is checked for what each kind of store does.)
pub async fn a_delivery_handed_over_at_intake_is_in_flight_with_its_lease(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let e = event("m1", TimeDelta::zero());
    let handed_over = route("log", "log", DeliveryStart::Claimed(LEASE));
    store.insert(&e, vec![handed_over]).await.unwrap();

    let delivery = &detail(&*store, &e.id).await.deliveries[0];
    assert_eq!(state(delivery), ("inflight", 1));
    assert_eq!(store.counts().await.unwrap().inflight, 1);
    assert!(store.claim("log", 10, LEASE).await.unwrap().is_empty());
    let released = store.release_leases(Leases::Expired).await.unwrap();
    assert_eq!(released, 0, "lease fresh");

    let lost = event("m2", TimeDelta::zero());
    let worker_vanished = route("log", "log", DeliveryStart::Claimed(Duration::ZERO));
    store.insert(&lost, vec![worker_vanished]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(store.release_leases(Leases::Expired).await.unwrap(), 1);
    let again = store.claim("log", 10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2, "the handed-over attempt counts");
    let fresh = if fixture.shared() { 0 } else { 2 };
    let at_start = store.release_leases(Leases::LeftAtStart).await.unwrap();
    assert_eq!(at_start, fresh);
}

/// A delivery a handler made at intake is committed as delivered by that attempt, which its
/// history shows; there is nothing left to do for it.
pub async fn a_delivery_done_at_intake_is_committed_delivered_with_its_attempt(
    fixture: &dyn Fixture,
) {
    let store = fixture.open().await;
    let e = event("m1", TimeDelta::zero());
    let started_at = Utc.timestamp_millis_opt(1_700_000_000_123).unwrap();
    let done = route(
        "log",
        "log",
        DeliveryStart::Delivered(SuccessRecord {
            started_at,
            duration: Duration::from_millis(3),
        }),
    );
    store.insert(&e, vec![done]).await.unwrap();

    let detail = detail(&*store, &e.id).await;
    assert_eq!(detail.summary.status, "delivered");
    let delivery = &detail.deliveries[0];
    assert_eq!(state(delivery), ("delivered", 1));
    assert_eq!(delivery.history.len(), 1);
    let attempt = &delivery.history[0];
    assert_eq!(
        (
            attempt.outcome.as_str(),
            attempt.started_at,
            attempt.duration_ms
        ),
        ("delivered", started_at, 3)
    );
    assert_eq!(store.counts().await.unwrap(), DeliveryCounts::default());
    let due = store.claim("log", 10, LEASE).await.unwrap();
    assert!(due.is_empty(), "nothing left to claim");
}
