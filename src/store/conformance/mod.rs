//! The rules every [`Store`] keeps, written once as tests that any implementation runs.
//!
//! Everything above the store (intake, dispatch, the admin API) relies on these rules and on
//! nothing an implementation does beyond them: dedupe, durability, the start state of each
//! delivery, claims and leases, attempt records and their history, replays, the inspector's
//! listings and filters, pruning and counts. Each rule is an `async fn` taking a [`Fixture`];
//! the [`store_conformance!`](crate::store_conformance) macro turns every rule into a
//! `#[tokio::test]` of the module it is called in. A rule added here is added to the macro's
//! list, and so runs against every store at once.
//!
//! # Running it against a store
//!
//! An implementation provides a [`Fixture`]: a fresh, empty store for one rule, which it can
//! open again on the same data (the durability rules drop every handle and reopen). Then one
//! macro call runs every rule against it. The SQLite store's run, in `store/sqlite/tests.rs`, is
//! the whole recipe:
//!
//! ```text
//! struct Fresh(tempfile::TempDir);
//!
//! #[async_trait]
//! impl Fixture for Fresh {
//!     async fn open(&self) -> Arc<dyn Store> {
//!         Arc::new(SqliteStore::open(self.0.path(), Synchronous::Full, 0).unwrap())
//!     }
//! }
//!
//! mod conformance {
//!     use super::Fresh;
//!
//!     crate::store_conformance!(Fresh(tempfile::tempdir().unwrap()));
//! }
//! ```
//!
//! The macro's argument is evaluated once per rule, inside its async test, so it may `.await`.
//! The PostgreSQL store does the same in `store/postgres/tests/mod.rs` with a fixture that
//! creates a database of its own for each rule on a scratch cluster (`tests/common/postgres.rs`)
//! and says that the store is [shared](Fixture::shared).
//!
//! A store outside this crate runs the same suite with the cargo feature `conformance`
//! (`hookline = { …, features = ["conformance"] }` in its dev-dependencies, with `tokio`
//! (`macros`, `rt`) and `async-trait`) and `hookline::store_conformance!(…)`.
//!
//! Rules use events of two test sources, [`ALPHA`] and [`BETA`]: the store knows no provider.
//! Their bodies name the contact and conversation an event is about ([`about`]), which is all the
//! store asks of an event beyond its envelope's fields (through [`Envelope::key_ids`]). Rules use
//! the store's own clock only as the trait does (leases, retry times, "now" for expedite and
//! pruning), never its timing.

pub mod attempts;
pub mod claims;
pub mod insert;
pub mod inspection;
pub mod lookup;
pub mod order;
pub mod overview;
pub mod prune;
pub mod replay;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};

use super::{
    AttemptRecord, DeliveryInfo, DeliveryStart, EventDetail, InsertOutcome, NewDelivery, NextStep,
    Store,
};
use crate::envelope::{Decoded, Envelope, KeyIds, PersonalData, ProviderEvent, Source, SourceSpec};

/// A fresh, empty store for one rule, and the means to open it again on the same data.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// Opens the store. The first call finds it empty; a later one, once every handle of the
    /// earlier ones is dropped, finds everything they committed.
    async fn open(&self) -> Arc<dyn Store>;

    /// Whether the store is one that several processes share (replicas on one database). Such
    /// a store cannot tell a lease left by a process that died from one held by a replica that
    /// is running its delivery, so at start-up it releases only expired leases
    /// ([`Leases::LeftAtStart`](crate::store::Leases::LeftAtStart)); the rules about start-up
    /// expect what each kind of store does.
    fn shared(&self) -> bool {
        false
    }
}

/// Makes one `#[tokio::test]` per rule of [`crate::store::conformance`], each running against
/// a fixture that the macro's argument (evaluated anew in each test) provides.
#[doc(hidden)]
#[macro_export]
macro_rules! store_conformance {
    ($fixture:expr) => {
        $crate::store_conformance!(@each $fixture;
            insert::an_event_is_stored_with_one_delivery_per_route,
            insert::an_event_without_routes_is_stored_unrouted,
            insert::a_second_insert_of_an_event_is_a_duplicate_and_writes_nothing,
            insert::duplicates_are_detected_even_within_one_batch,
            insert::concurrent_inserts_store_each_event_exactly_once,
            insert::the_same_provider_id_from_another_source_is_another_event,
            insert::committed_events_survive_reopening,
            insert::a_delivery_handed_over_at_intake_is_in_flight_with_its_lease,
            insert::a_delivery_done_at_intake_is_committed_delivered_with_its_attempt,
            claims::claims_take_only_due_deliveries_of_their_handler,
            claims::claims_take_at_most_their_limit_longest_due_first,
            claims::attempts_count_every_claim_since_creation,
            claims::expired_leases_are_released_and_fresh_ones_kept,
            claims::expedite_makes_a_handlers_waiting_retries_due_now,
            claims::claimed_events_are_read_back_as_they_were_stored,
            attempts::a_delivered_attempt_finishes_its_delivery,
            attempts::a_retry_records_the_failure_and_waits_for_its_time,
            attempts::a_dead_attempt_makes_a_dead_letter,
            attempts::a_success_is_shown_last_in_the_history_and_kept_by_a_replay,
            replay::a_replayed_dead_letter_starts_again_with_a_fresh_budget,
            replay::replays_of_what_does_not_exist_are_not_found,
            replay::a_delivery_in_flight_cannot_be_replayed,
            replay::replaying_an_event_creates_the_deliveries_of_routes_it_lacks,
            replay::replaying_an_event_leaves_deliveries_in_flight_alone,
            replay::replay_dead_replays_the_dead_letters_a_filter_matches,
            inspection::events_are_listed_newest_first_with_their_fields,
            inspection::events_are_filtered_by_source_type_and_time,
            inspection::events_are_filtered_by_status,
            inspection::listings_page_with_the_before_cursor,
            inspection::listing_limits_default_to_100_and_are_clamped,
            inspection::a_filter_applies_only_where_it_means_something,
            inspection::dead_letters_are_listed_newest_first_and_filtered,
            inspection::an_unknown_event_has_no_detail,
            inspection::deliveries_are_counted_by_state,
            inspection::the_oldest_waiting_delivery_is_reported,
            lookup::events_are_found_by_the_contact_or_conversation_they_are_about,
            lookup::events_newer_than_a_cursor_are_listed_newest_first,
            lookup::dead_letters_are_filtered_by_their_error,
            overview::activity_is_counted_per_minute_source_and_type,
            overview::the_types_seen_are_listed_once_each,
            overview::the_backlog_counts_waiting_and_dead_work_and_its_oldest_delivery,
            overview::dead_letters_are_grouped_by_route_and_by_error,
            overview::activity_is_pruned_with_the_ids,
            prune::prune_keeps_ids_for_dedupe_drops_bodies_and_spares_unfinished_work,
            prune::ids_are_kept_as_long_as_bodies,
            prune::work_in_flight_or_waiting_to_retry_is_never_pruned,
            prune::a_dead_letter_past_retention_can_no_longer_be_replayed,
            order::one_key_is_claimed_one_delivery_at_a_time_in_event_order,
            order::a_head_waiting_for_its_retry_holds_back_only_its_key,
            order::a_dead_head_blocks_its_key_until_skipped,
            order::a_replayed_dead_head_goes_before_the_rest_of_its_key,
            order::a_dead_head_that_does_not_block_lets_the_next_go,
            order::long_queues_drain_in_order_however_their_heads_end,
            order::pruning_a_dead_head_that_blocks_lets_the_next_go,
            order::keys_survive_reopening,
        );
    };
    (@each $fixture:expr; $($module:ident :: $rule:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $rule() {
                let fixture = $fixture;
                $crate::store::conformance::$module::$rule(&fixture).await;
            }
        )+
    };
}

/// A test source; the store only keeps its name, and the ids its events are about.
pub(crate) static ALPHA: SourceSpec = SourceSpec {
    name: "alpha",
    id_code: "al",
    decode: decode_about,
    personal_keys: &[],
};

/// A second test source, for the rules about sources.
pub(crate) static BETA: SourceSpec = SourceSpec {
    name: "beta",
    id_code: "be",
    decode: decode_about,
    personal_keys: &[],
};

/// What a test source's body decodes into: its type, and the contact and conversation of
/// `data` when it names them.
#[derive(Debug, serde::Deserialize)]
struct TestEvent {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    data: TestData,
}

/// The `data` of a test body.
#[derive(Debug, Default, serde::Deserialize)]
struct TestData {
    contact: Option<String>,
    conversation: Option<String>,
}

impl ProviderEvent for TestEvent {
    fn event_type(&self) -> &str {
        &self.event_type
    }
    fn key_ids(&self) -> KeyIds {
        KeyIds {
            contact: self.data.contact.clone(),
            conversation: self.data.conversation.clone(),
            ..KeyIds::default()
        }
    }
    fn personal(&self) -> PersonalData {
        PersonalData::default()
    }
}

/// The decoder of the test sources: the store asks an envelope only for its key ids.
fn decode_about(body: &[u8]) -> Decoded {
    Decoded::from_result(serde_json::from_slice::<TestEvent>(body), || None)
}

/// The lease of claims that must not expire during a rule.
pub const LEASE: Duration = Duration::from_secs(60);

/// An event of [`ALPHA`], type `store.created`, received `age` ago.
pub fn event(provider_id: &str, age: TimeDelta) -> Envelope {
    envelope(
        Source::new(&ALPHA),
        provider_id,
        "store.created",
        Utc::now() - age,
        None,
    )
}

/// An event of any shape; its body is JSON that names its type and provider id.
pub fn envelope(
    source: Source,
    provider_id: &str,
    event_type: &str,
    received_at: DateTime<Utc>,
    decode_error: Option<&str>,
) -> Envelope {
    let body = format!(r#"{{"type":"{event_type}","data":{{"id":"{provider_id}"}}}}"#);
    Envelope::restore(
        source,
        "default".into(),
        provider_id.into(),
        event_type.into(),
        received_at,
        decode_error.map(str::to_owned),
        Bytes::from(body),
    )
}

/// An event of [`ALPHA`] received now, about a contact and perhaps a conversation (the ids its
/// body names).
pub fn about(provider_id: &str, contact: &str, conversation: Option<&str>) -> Envelope {
    let data =
        serde_json::json!({ "id": provider_id, "contact": contact, "conversation": conversation });
    let body = serde_json::json!({ "type": "chat.message", "data": data }).to_string();
    Envelope::restore(
        Source::new(&ALPHA),
        "default".into(),
        provider_id.into(),
        "chat.message".into(),
        Utc::now(),
        None,
        Bytes::from(body),
    )
}

/// The deliveries of one route named after its handler, pending.
pub fn to(handler: &str) -> Vec<NewDelivery> {
    vec![route(handler, handler, DeliveryStart::Pending)]
}

/// A delivery of `route` to `handler`, created in `start`.
pub fn route(route: &str, handler: &str, start: DeliveryStart) -> NewDelivery {
    NewDelivery {
        route: route.into(),
        handler: handler.into(),
        start,
        order: None,
    }
}

/// Stores an event of [`ALPHA`] received now with one pending delivery to `handler`; returns
/// the delivery's id.
pub async fn insert_pending(store: &dyn Store, provider_id: &str, handler: &str) -> i64 {
    let e = event(provider_id, TimeDelta::zero());
    stored(store.insert(&e, to(handler)).await.unwrap())[0]
}

/// The delivery ids of an insert that must have stored its event.
pub fn stored(outcome: InsertOutcome) -> Vec<i64> {
    match outcome {
        InsertOutcome::Stored { delivery_ids } => delivery_ids,
        InsertOutcome::Duplicate => panic!("stored as a duplicate"),
    }
}

/// An attempt that started now and got HTTP `status` (and `error`, when it failed).
pub fn attempt(status: u16, error: Option<&str>) -> AttemptRecord {
    AttemptRecord {
        started_at: Utc::now(),
        duration: Duration::from_millis(3),
        http_status: Some(status),
        error: error.map(str::to_owned),
    }
}

/// Claims the one due delivery of `handler` and records `record` with `next` for it; returns
/// its id.
pub async fn attempt_once(
    store: &dyn Store,
    handler: &str,
    record: AttemptRecord,
    next: NextStep,
) -> i64 {
    let claimed = store.claim(handler, 1, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1, "one due delivery");
    let id = claimed[0].delivery_id;
    store.finish(id, record, next).await.unwrap();
    id
}

/// Claims every due delivery of `handler` and records a success for each.
pub async fn deliver_all(store: &dyn Store, handler: &str) {
    for claimed in store.claim(handler, 100, LEASE).await.unwrap() {
        let success = attempt(200, None);
        store
            .finish(claimed.delivery_id, success, NextStep::Delivered)
            .await
            .unwrap();
    }
}

/// The detail of an event that must exist.
pub async fn detail(store: &dyn Store, id: &str) -> EventDetail {
    store.event(id).await.unwrap().expect("the event exists")
}

/// The delivery of an event that `route` created.
pub fn on_route<'a>(detail: &'a EventDetail, route: &str) -> &'a DeliveryInfo {
    let found = detail.deliveries.iter().find(|d| d.route == route);
    found.unwrap_or_else(|| panic!("no delivery of route {route}"))
}

/// A delivery's state and its attempts since creation or the last replay.
pub fn state(delivery: &DeliveryInfo) -> (&str, u32) {
    (delivery.state.as_str(), delivery.attempts)
}

/// The outcome and HTTP status of each attempt of the event's first delivery, oldest first.
pub fn outcomes(detail: &EventDetail) -> Vec<(String, Option<u16>)> {
    detail.deliveries[0]
        .history
        .iter()
        .map(|a| (a.outcome.clone(), a.http_status))
        .collect()
}

/// A time the stores keep exactly: whole milliseconds, `age` before now.
pub fn millis_ago(age: TimeDelta) -> DateTime<Utc> {
    let at = Utc::now() - age;
    DateTime::from_timestamp_millis(at.timestamp_millis()).expect("in range")
}
