//! What the inspector's overview reads: activity per minute, the types seen, the open work and
//! the dead letters grouped.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{
    attempt, attempt_once, envelope, event, insert_pending, millis_ago, to, Fixture, ALPHA, BETA,
    LEASE,
};
use crate::envelope::Source;
use crate::store::{EventFilter, EventType, GroupCount, MinuteCount, NextStep};

/// The start of the minute that `at` falls in.
fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let ms = at.timestamp_millis();
    DateTime::from_timestamp_millis(ms - ms.rem_euclid(60_000)).expect("in range")
}

/// One line of the activity.
fn counted(
    minute: DateTime<Utc>,
    source: &str,
    event_type: &str,
    events: u64,
    undecodable: u64,
) -> MinuteCount {
    MinuteCount {
        minute,
        source: source.into(),
        event_type: event_type.into(),
        events,
        undecodable,
    }
}

/// Every stored event counts once in the minute it was received, by source and type, with how
/// many of them did not decode; duplicates do not count, and only the minutes from `since` on
/// are read, oldest first.
pub async fn activity_is_counted_per_minute_source_and_type(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let (alpha, beta) = (Source::new(&ALPHA), Source::new(&BETA));
    let now = Utc::now();
    let earlier = now - TimeDelta::minutes(30);
    let long_ago = now - TimeDelta::hours(5);
    let events = [
        envelope(alpha, "a1", "x", earlier, None),
        envelope(alpha, "a2", "x", earlier, Some("does not fit")),
        envelope(beta, "b1", "x", earlier, None),
        envelope(alpha, "a3", "y", now, None),
        envelope(alpha, "a4", "x", long_ago, None),
    ];
    for e in &events {
        store.insert(e, to("h")).await.unwrap();
    }
    store.insert(&events[0], to("h")).await.unwrap();

    let activity = store.activity(now - TimeDelta::hours(1)).await.unwrap();
    assert_eq!(
        activity,
        [
            counted(minute_of(earlier), "alpha", "x", 2, 1),
            counted(minute_of(earlier), "beta", "x", 1, 0),
            counted(minute_of(now), "alpha", "y", 1, 0),
        ]
    );
    let all = store.activity(now - TimeDelta::days(1)).await.unwrap();
    assert_eq!(all[0], counted(minute_of(long_ago), "alpha", "x", 1, 0));
    assert!(store
        .activity(now + TimeDelta::minutes(2))
        .await
        .unwrap()
        .is_empty());
}

/// The types seen are each source's distinct event types, sorted by source then type.
pub async fn the_types_seen_are_listed_once_each(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let (alpha, beta) = (Source::new(&ALPHA), Source::new(&BETA));
    let at = millis_ago(TimeDelta::minutes(1));
    let long_ago = millis_ago(TimeDelta::hours(30));
    for (source, id, event_type, at) in [
        (beta, "b1", "z", at),
        (alpha, "a1", "y", at),
        (alpha, "a2", "x", long_ago),
        (alpha, "a3", "y", long_ago),
    ] {
        let e = envelope(source, id, event_type, at, None);
        store.insert(&e, Vec::new()).await.unwrap();
    }
    let types = store.event_types().await.unwrap();
    let seen = |source: &str, event_type: &str| EventType {
        source: source.into(),
        event_type: event_type.into(),
    };
    assert_eq!(
        types,
        [seen("alpha", "x"), seen("alpha", "y"), seen("beta", "z")]
    );
}

/// The backlog counts deliveries by state, the events with waiting or dead work, and since
/// when the oldest waiting delivery (pending or in flight) has waited.
pub async fn the_backlog_counts_waiting_and_dead_work_and_its_oldest_delivery(
    fixture: &dyn Fixture,
) {
    let store = fixture.open().await;
    assert_eq!(store.backlog().await.unwrap(), Default::default());

    let before = millis_ago(TimeDelta::zero());
    insert_pending(&*store, "m1", "slow").await;
    let two_routes = event("m2", TimeDelta::zero());
    let mut routes = to("slow");
    routes.extend(to("dead"));
    store.insert(&two_routes, routes).await.unwrap();
    insert_pending(&*store, "m3", "done").await;
    attempt_once(&*store, "dead", attempt(400, Some("no")), NextStep::Dead).await;
    attempt_once(&*store, "done", attempt(200, None), NextStep::Delivered).await;
    store.claim("slow", 1, LEASE).await.unwrap();

    let backlog = store.backlog().await.unwrap();
    assert_eq!(
        (
            backlog.deliveries.pending,
            backlog.deliveries.inflight,
            backlog.deliveries.dead
        ),
        (1, 1, 1)
    );
    assert_eq!((backlog.events_pending, backlog.events_dead), (2, 1));
    let oldest = backlog.oldest_waiting_since.expect("something waits");
    assert!(
        oldest >= before - TimeDelta::seconds(1) && oldest <= Utc::now(),
        "{oldest}"
    );
}

/// Dead letters that match a filter are counted in all, by route and by error, the largest
/// groups first.
pub async fn dead_letters_are_grouped_by_route_and_by_error(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let dead = [
        ("m1", "crm", "HTTP 400"),
        ("m2", "crm", "HTTP 400"),
        ("m3", "crm", "HTTP 410"),
        ("m4", "file", "HTTP 400"),
    ];
    for (id, handler, error) in dead {
        insert_pending(&*store, id, handler).await;
        attempt_once(&*store, handler, attempt(400, Some(error)), NextStep::Dead).await;
    }
    insert_pending(&*store, "m5", "crm").await;

    let groups = store
        .dead_letter_groups(EventFilter::default())
        .await
        .unwrap();
    let group = |key: &str, count| GroupCount {
        key: Some(key.into()),
        count,
    };
    assert_eq!(groups.total, 4);
    assert_eq!(groups.by_route, [group("crm", 3), group("file", 1)]);
    assert_eq!(
        groups.by_error,
        [group("HTTP 400", 3), group("HTTP 410", 1)]
    );

    let crm = EventFilter {
        route: Some("crm".into()),
        ..EventFilter::default()
    };
    let groups = store.dead_letter_groups(crm).await.unwrap();
    assert_eq!(groups.total, 3);
    assert_eq!(
        groups.by_error,
        [group("HTTP 400", 2), group("HTTP 410", 1)]
    );
    store.replay_dead(EventFilter::default()).await.unwrap();
    assert_eq!(
        store
            .dead_letter_groups(EventFilter::default())
            .await
            .unwrap()
            .total,
        0
    );
}

/// Pruning forgets the activity of the minutes whose events' ids it forgets, and keeps the
/// rest.
pub async fn activity_is_pruned_with_the_ids(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let old = event("m1", TimeDelta::hours(3));
    let recent = event("m2", TimeDelta::minutes(5));
    for e in [&old, &recent] {
        store.insert(e, Vec::new()).await.unwrap();
    }
    let hour = Duration::from_secs(3600);
    store.prune(hour, hour).await.unwrap();
    let activity = store
        .activity(Utc::now() - TimeDelta::days(1))
        .await
        .unwrap();
    assert_eq!(
        activity,
        [counted(
            minute_of(recent.received_at),
            "alpha",
            "store.created",
            1,
            0
        )]
    );
    let types = store.event_types().await.unwrap();
    assert_eq!(types.len(), 1);
}
