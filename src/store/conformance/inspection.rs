//! What the inspector reads: event listings and their filters, dead letters, one event in
//! detail, and the delivery counts of metrics and readiness.

use chrono::{TimeDelta, Utc};
use futures_util::future::join_all;

use super::{
    attempt, attempt_once, envelope, event, insert_pending, millis_ago, route, state, stored, to,
    Fixture, ALPHA, BETA, LEASE,
};
use crate::envelope::{Envelope, Source};
use crate::store::{DeliveryStart, EventFilter, NextStep, Store, StoreError};

/// The ids `list_events` returns for `filter`, in its order.
async fn listed(store: &dyn Store, filter: EventFilter) -> Vec<String> {
    let events = store.list_events(filter).await.unwrap();
    events.into_iter().map(|e| e.id).collect()
}

/// The delivery ids `dead_letters` returns for `filter`, in its order.
async fn dead_ids(store: &dyn Store, filter: EventFilter) -> Vec<i64> {
    let letters = store.dead_letters(filter).await.unwrap();
    letters.into_iter().map(|d| d.id).collect()
}

/// The ids of these events, in the order given.
fn ids_of<'a>(events: impl IntoIterator<Item = &'a Envelope>) -> Vec<String> {
    events.into_iter().map(|e| e.id.clone()).collect()
}

/// Events are listed in the reverse of the order they were stored, each with its stored
/// fields; `seq` grows with that order (it is the paging cursor).
pub async fn events_are_listed_newest_first_with_their_fields(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let at = millis_ago(TimeDelta::minutes(5));
    let first = envelope(Source::new(&ALPHA), "m1", "a.b", at, None);
    let second = envelope(Source::new(&BETA), "m2", "c", at, Some("missing field `x`"));
    let third = event("m3", TimeDelta::zero());
    for e in [&first, &second, &third] {
        store.insert(e, to("h")).await.unwrap();
    }

    let events = store.list_events(EventFilter::default()).await.unwrap();
    let ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, ids_of([&third, &second, &first]));
    assert!(events[0].seq > events[1].seq && events[1].seq > events[2].seq);
    let listed = &events[1];
    assert_eq!(listed.source, "beta");
    assert_eq!(listed.endpoint, second.endpoint);
    assert_eq!(listed.provider_id, "m2");
    assert_eq!(listed.event_type, "c");
    assert_eq!(listed.received_at, at);
    assert_eq!(listed.decode_error.as_deref(), Some("missing field `x`"));
    assert_eq!(listed.status, "pending");
}

/// Source, type, `since` (inclusive) and `until` (exclusive) each narrow a listing, and
/// together they all apply.
pub async fn events_are_filtered_by_source_type_and_time(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let (alpha, beta) = (Source::new(&ALPHA), Source::new(&BETA));
    let hours_ago = |h| millis_ago(TimeDelta::hours(h));
    let e1 = envelope(alpha, "e1", "A", hours_ago(3), None);
    let e2 = envelope(beta, "e2", "A", hours_ago(2), None);
    let e3 = envelope(alpha, "e3", "B", hours_ago(1), None);
    for e in [&e1, &e2, &e3] {
        store.insert(e, Vec::new()).await.unwrap();
    }

    let filter = |source: Option<&str>, event_type: Option<&str>| EventFilter {
        source: source.map(str::to_owned),
        event_type: event_type.map(str::to_owned),
        ..EventFilter::default()
    };
    let by_source = listed(&*store, filter(Some("alpha"), None)).await;
    assert_eq!(by_source, ids_of([&e3, &e1]));
    let by_type = listed(&*store, filter(None, Some("A"))).await;
    assert_eq!(by_type, ids_of([&e2, &e1]));
    let both = listed(&*store, filter(Some("alpha"), Some("A"))).await;
    assert_eq!(both, ids_of([&e1]));
    let since = EventFilter {
        since: Some(e2.received_at),
        ..EventFilter::default()
    };
    assert_eq!(listed(&*store, since).await, ids_of([&e3, &e2]));
    let until = EventFilter {
        until: Some(e2.received_at),
        ..EventFilter::default()
    };
    assert_eq!(listed(&*store, until).await, ids_of([&e1]));
    let nothing = filter(Some("gamma"), None);
    assert!(listed(&*store, nothing).await.is_empty());
}

/// An event's status follows its deliveries: `dead` if any is dead, else `pending` if any is
/// pending or in flight, else `delivered`, and `unrouted` without any. A filter by status
/// lists the events in it, and `undecodable` lists those whose body did not decode, whatever
/// their status.
pub async fn events_are_filtered_by_status(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let alpha = Source::new(&ALPHA);
    let at = millis_ago(TimeDelta::zero());
    let pending = event("pending", TimeDelta::zero());
    let in_flight = event("inflight", TimeDelta::zero());
    let delivered = envelope(alpha, "delivered", "x", at, Some("bad body"));
    let dead = event("dead", TimeDelta::zero());
    let unrouted = envelope(alpha, "unrouted", "x", at, Some("bad body"));
    store.insert(&pending, to("p")).await.unwrap();
    let handed_over = route("r", "i", DeliveryStart::Claimed(LEASE));
    store.insert(&in_flight, vec![handed_over]).await.unwrap();
    store.insert(&delivered, to("d")).await.unwrap();
    attempt_once(&*store, "d", attempt(200, None), NextStep::Delivered).await;
    let dead_and_delivered = vec![
        route("ok", "d", DeliveryStart::Pending),
        route("ko", "k", DeliveryStart::Pending),
    ];
    store.insert(&dead, dead_and_delivered).await.unwrap();
    attempt_once(&*store, "d", attempt(200, None), NextStep::Delivered).await;
    attempt_once(&*store, "k", attempt(500, None), NextStep::Dead).await;
    store.insert(&unrouted, Vec::new()).await.unwrap();

    let all = store.list_events(EventFilter::default()).await.unwrap();
    let statuses: Vec<_> = all.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["unrouted", "dead", "delivered", "pending", "pending"]
    );
    let with_status = |status: &str| EventFilter {
        status: Some(status.into()),
        ..EventFilter::default()
    };
    let expected = [
        ("pending", ids_of([&in_flight, &pending])),
        ("delivered", ids_of([&delivered])),
        ("dead", ids_of([&dead])),
        ("unrouted", ids_of([&unrouted])),
        ("undecodable", ids_of([&unrouted, &delivered])),
    ];
    for (status, ids) in expected {
        assert_eq!(listed(&*store, with_status(status)).await, ids, "{status}");
    }
    let err = store.list_events(with_status("lost")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

/// `before` lists only events stored before the one with that `seq`: the next page.
pub async fn listings_page_with_the_before_cursor(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let events: Vec<_> = (1..=5)
        .map(|n| event(&format!("m{n}"), TimeDelta::zero()))
        .collect();
    for e in &events {
        store.insert(e, Vec::new()).await.unwrap();
    }
    let page = |before: Option<i64>| EventFilter {
        limit: Some(2),
        before,
        ..EventFilter::default()
    };
    let first = store.list_events(page(None)).await.unwrap();
    let second = store.list_events(page(Some(first[1].seq))).await.unwrap();
    let third = store.list_events(page(Some(second[1].seq))).await.unwrap();
    let ids = |page: &[crate::store::EventSummary]| -> Vec<String> {
        page.iter().map(|e| e.id.clone()).collect()
    };
    assert_eq!(ids(&first), ids_of([&events[4], &events[3]]));
    assert_eq!(ids(&second), ids_of([&events[2], &events[1]]));
    assert_eq!(ids(&third), ids_of([&events[0]]));
}

/// Without a limit a listing holds 100 events; a limit is clamped between 1 and 1000.
pub async fn listing_limits_default_to_100_and_are_clamped(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let events: Vec<_> = (0..1001)
        .map(|n| event(&format!("m{n}"), TimeDelta::zero()))
        .collect();
    for outcome in join_all(events.iter().map(|e| store.insert(e, Vec::new()))).await {
        stored(outcome.unwrap());
    }
    for (limit, expected) in [(None, 100), (Some(0), 1), (Some(7), 7), (Some(5000), 1000)] {
        let filter = EventFilter {
            limit,
            ..EventFilter::default()
        };
        let events = store.list_events(filter).await.unwrap();
        assert_eq!(events.len(), expected, "limit {limit:?}");
    }
}

/// A filter by route applies to dead letters only, one by status to events only: anything
/// else is `Conflict`, rather than a filter silently ignored.
pub async fn a_filter_applies_only_where_it_means_something(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let by_route = EventFilter {
        route: Some("r".into()),
        ..EventFilter::default()
    };
    let err = store.list_events(by_route).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let by_status = EventFilter {
        status: Some("dead".into()),
        ..EventFilter::default()
    };
    let err = store.dead_letters(by_status).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

/// Dead letters, and only they, are listed newest first with their event and last error, and
/// narrowed by source, type, route, time and limit.
pub async fn dead_letters_are_listed_newest_first_and_filtered(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let (alpha, beta) = (Source::new(&ALPHA), Source::new(&BETA));
    let at = millis_ago(TimeDelta::zero());
    let letters = [
        (envelope(alpha, "d1", "A", at, None), "r1"),
        (envelope(beta, "d2", "A", at, None), "r2"),
        (envelope(alpha, "d3", "B", at, None), "r1"),
    ];
    let mut ids = Vec::new();
    for (e, route_name) in &letters {
        store
            .insert(e, vec![route(route_name, "h", DeliveryStart::Pending)])
            .await
            .unwrap();
        let failure = attempt(500, Some(&format!("{} failed", e.provider_id)));
        ids.push(attempt_once(&*store, "h", failure, NextStep::Dead).await);
    }
    insert_pending(&*store, "alive", "h").await;
    insert_pending(&*store, "done", "d").await;
    attempt_once(&*store, "d", attempt(200, None), NextStep::Delivered).await;

    let all = store.dead_letters(EventFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|d| d.id).collect::<Vec<_>>(),
        [ids[2], ids[1], ids[0]]
    );
    let newest = &all[0];
    assert_eq!(newest.event_id, letters[2].0.id);
    assert_eq!(
        (newest.route.as_str(), newest.handler.as_str()),
        ("r1", "h")
    );
    assert_eq!(state(newest), ("dead", 1));
    assert_eq!(newest.last_error.as_deref(), Some("d3 failed"));

    let on_r1 = EventFilter {
        route: Some("r1".into()),
        ..EventFilter::default()
    };
    assert_eq!(dead_ids(&*store, on_r1).await, [ids[2], ids[0]]);
    let from_beta = EventFilter {
        source: Some("beta".into()),
        ..EventFilter::default()
    };
    assert_eq!(dead_ids(&*store, from_beta).await, [ids[1]]);
    let of_type_a = EventFilter {
        event_type: Some("A".into()),
        ..EventFilter::default()
    };
    assert_eq!(dead_ids(&*store, of_type_a).await, [ids[1], ids[0]]);
    let later = EventFilter {
        since: Some(Utc::now() + TimeDelta::hours(1)),
        ..EventFilter::default()
    };
    assert!(dead_ids(&*store, later).await.is_empty());
    let one = EventFilter {
        limit: Some(1),
        ..EventFilter::default()
    };
    assert_eq!(dead_ids(&*store, one).await, [ids[2]]);
}

/// An id the store does not hold has no detail (and is no error).
pub async fn an_unknown_event_has_no_detail(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    insert_pending(&*store, "m1", "h").await;
    assert!(store.event("evt_al_m2").await.unwrap().is_none());
}

/// Counts are of open deliveries by state: pending (due or waiting to retry), in flight and
/// dead; delivered ones are not counted.
pub async fn deliveries_are_counted_by_state(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let routes = vec![
        route("due", "due", DeliveryStart::Pending),
        route("waiting", "w", DeliveryStart::Pending),
        route("busy", "b", DeliveryStart::Claimed(LEASE)),
        route("dead", "k", DeliveryStart::Pending),
        route("done", "d", DeliveryStart::Pending),
    ];
    store
        .insert(&event("m1", TimeDelta::zero()), routes)
        .await
        .unwrap();
    let later = NextStep::RetryAt(Utc::now() + TimeDelta::hours(1));
    attempt_once(&*store, "w", attempt(503, None), later).await;
    attempt_once(&*store, "k", attempt(500, None), NextStep::Dead).await;
    attempt_once(&*store, "d", attempt(200, None), NextStep::Delivered).await;

    let counts = store.counts().await.unwrap();
    assert_eq!((counts.pending, counts.inflight, counts.dead), (2, 1, 1));
}

/// The oldest delivery still waiting to be done is reported by when it was created: pending and
/// in-flight deliveries count, delivered ones and dead letters do not.
pub async fn the_oldest_waiting_delivery_is_reported(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    assert_eq!(store.oldest_waiting().await.unwrap(), None);
    let before = millis_ago(TimeDelta::zero());
    insert_pending(&*store, "m1", "a").await;
    let after = Utc::now();
    let oldest = store.oldest_waiting().await.unwrap().expect("one waits");
    assert!(
        before <= oldest && oldest <= after,
        "{oldest} not in {before}..{after}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let busy = vec![route("busy", "b", DeliveryStart::Claimed(LEASE))];
    store
        .insert(&event("m2", TimeDelta::zero()), busy)
        .await
        .unwrap();
    assert_eq!(store.oldest_waiting().await.unwrap(), Some(oldest));

    // The first is done: the in-flight one is the oldest now.
    attempt_once(&*store, "a", attempt(200, None), NextStep::Delivered).await;
    let next = store.oldest_waiting().await.unwrap().expect("one waits");
    assert!(next > oldest, "{next} after {oldest}");
    // A dead letter waits for an operator, not for dispatch.
    insert_pending(&*store, "m3", "k").await;
    attempt_once(&*store, "k", attempt(500, None), NextStep::Dead).await;
    assert_eq!(store.oldest_waiting().await.unwrap(), Some(next));
}
