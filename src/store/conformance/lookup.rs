//! What the inspector looks events up by beyond the listing filters: the contact or
//! conversation an event is about, the events that arrived after a listing was read, and the
//! dead letters of one error.

use chrono::TimeDelta;

use super::{about, attempt, attempt_once, event, to, Fixture};
use crate::store::{EventFilter, NextStep, Store};

/// The ids `list_events` returns for `filter`, in its order.
async fn listed(store: &dyn Store, filter: EventFilter) -> Vec<String> {
    let events = store.list_events(filter).await.unwrap();
    events.into_iter().map(|e| e.id).collect()
}

/// A filter for the events about `id`.
fn about_id(id: &str) -> EventFilter {
    EventFilter {
        about: Some(id.into()),
        ..EventFilter::default()
    }
}

/// `about` finds the events whose contact or conversation (as their envelope's key ids gave
/// them at intake) is the id, newest first, and combines with the other filters and paging.
pub async fn events_are_found_by_the_contact_or_conversation_they_are_about(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let first = about("m1", "c-1", Some("v-9"));
    let other = about("m2", "c-2", None);
    let second = about("m3", "c-1", None);
    let by_conversation = about("m4", "c-3", Some("c-1"));
    let unrelated = event("m5", TimeDelta::zero());
    for e in [&first, &other, &second, &by_conversation, &unrelated] {
        store.insert(e, to("h")).await.unwrap();
    }

    let found = listed(&*store, about_id("c-1")).await;
    assert_eq!(
        found,
        [
            by_conversation.id.clone(),
            second.id.clone(),
            first.id.clone()
        ]
    );
    assert_eq!(
        listed(&*store, about_id("v-9")).await,
        vec![first.id.clone()]
    );
    assert!(listed(&*store, about_id("nobody")).await.is_empty());

    let seqs: Vec<i64> = store
        .list_events(about_id("c-1"))
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    let older = EventFilter {
        before: Some(seqs[1]),
        ..about_id("c-1")
    };
    assert_eq!(listed(&*store, older).await, vec![first.id.clone()]);
    let typed = EventFilter {
        event_type: Some("store.created".into()),
        ..about_id("c-1")
    };
    assert!(listed(&*store, typed).await.is_empty());
}

/// `after` lists only the events stored after the one with that `seq`, newest first, so a page
/// can ask what arrived since it was read.
pub async fn events_newer_than_a_cursor_are_listed_newest_first(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let old = event("m1", TimeDelta::zero());
    store.insert(&old, to("h")).await.unwrap();
    let cursor = store.list_events(EventFilter::default()).await.unwrap()[0].seq;
    assert!(listed(
        &*store,
        EventFilter {
            after: Some(cursor),
            ..EventFilter::default()
        }
    )
    .await
    .is_empty());

    let new = [
        event("m2", TimeDelta::zero()),
        event("m3", TimeDelta::zero()),
    ];
    for e in &new {
        store.insert(e, to("h")).await.unwrap();
    }
    let since = EventFilter {
        after: Some(cursor),
        ..EventFilter::default()
    };
    assert_eq!(
        listed(&*store, since).await,
        [new[1].id.clone(), new[0].id.clone()]
    );
    let one = EventFilter {
        after: Some(cursor),
        limit: Some(1),
        ..EventFilter::default()
    };
    assert_eq!(listed(&*store, one).await, [new[1].id.clone()]);
}

/// `error` narrows dead letters to those whose last error is exactly that text; it means
/// nothing for events, and a listing of events refuses it.
pub async fn dead_letters_are_filtered_by_their_error(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    for (id, error) in [("m1", "HTTP 400"), ("m2", "HTTP 410"), ("m3", "HTTP 400")] {
        store
            .insert(&event(id, TimeDelta::zero()), to("h"))
            .await
            .unwrap();
        attempt_once(&*store, "h", attempt(400, Some(error)), NextStep::Dead).await;
    }
    let by_error = |error: &str| EventFilter {
        error: Some(error.into()),
        ..EventFilter::default()
    };
    let letters = store.dead_letters(by_error("HTTP 400")).await.unwrap();
    let events: Vec<&str> = letters.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!(
        events,
        [
            event("m3", TimeDelta::zero()).id,
            event("m1", TimeDelta::zero()).id
        ]
    );
    assert!(store
        .dead_letters(by_error("HTTP 500"))
        .await
        .unwrap()
        .is_empty());
    assert!(store.list_events(by_error("HTTP 400")).await.is_err());
    assert_eq!(store.replay_dead(by_error("HTTP 410")).await.unwrap(), 1);
}
