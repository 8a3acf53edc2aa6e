//! The inbox: where every acknowledged event is committed before its 2xx, and where deliveries,
//! their attempts and their retry state live, so that a restart resumes where it stopped.
//!
//! [`Store`] is the interface the rest of hookline uses; [`sqlite::SqliteStore`] is the embedded
//! default, [`postgres::PostgresStore`] the one that several replicas share. Nothing here names a
//! database: an implementation keeps its own errors, settings and SQL in its folder, and keeps
//! the rules that `conformance` checks (compiled for tests, and for other crates with the cargo
//! feature `conformance`).

mod batch;
#[cfg(any(test, feature = "conformance"))]
#[doc(hidden)]
pub mod conformance;
pub mod order;
pub mod postgres;
pub mod sqlite;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::envelope::Envelope;

pub use order::{BlockedKey, OrderKey, OrderedRoute};
pub use postgres::{DatabaseUrl, PostgresStore};
pub use sqlite::{SqliteStore, Synchronous};

/// Why the store could not do what was asked. Intake answers any of these with 503.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store could not read or write (disk full, I/O error, read-only, corrupt …); the
    /// message says what it was doing and why it failed, in the words of the implementation.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store's worker thread is gone (shutting down).
    #[error("store is closed")]
    Closed,
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request cannot be carried out as asked.
    #[error("{0}")]
    Conflict(String),
}

/// The inbox.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The PostgreSQL database that replicas share (`postgres://user:password@host:port/db`);
    /// without it, the inbox is SQLite in `data_dir`. Shown without its password.
    pub url: Option<DatabaseUrl>,
    /// Most connections to PostgreSQL at once, per replica.
    pub pool_size: usize,
    /// SQLite `synchronous` setting (see [`Synchronous`]).
    pub synchronous: Synchronous,
    /// How long event ids are remembered to drop the provider's duplicates.
    #[serde(with = "humantime_serde")]
    pub dedupe_window: Duration,
    /// How long event bodies are kept once their deliveries are finished.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How often the pruning task runs.
    #[serde(with = "humantime_serde")]
    pub prune_interval: Duration,
    /// Upper bound on the database size in bytes; past it intake answers 503 (0 = no bound).
    /// SQLite only: PostgreSQL's files do not shrink when rows are deleted, so a bound on them
    /// would refuse events for good once reached.
    pub max_size: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            pool_size: postgres::DEFAULT_POOL_SIZE,
            synchronous: Synchronous::Full,
            dedupe_window: Duration::from_secs(7 * 24 * 3600),
            retention: Duration::from_secs(7 * 24 * 3600),
            prune_interval: Duration::from_secs(600),
            max_size: 0,
        }
    }
}

/// What happened to an event offered to the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Committed, with one delivery per matching route; their ids, in the order given.
    Stored {
        /// Ids of the new deliveries.
        delivery_ids: Vec<i64>,
    },
    /// Seen before within the dedupe window: nothing written, nothing dispatched.
    Duplicate,
}

/// A delivery to create: the event goes to `handler` because `route` matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// Route name.
    pub route: String,
    /// Handler name.
    pub handler: String,
    /// The state it is created in.
    pub start: DeliveryStart,
    /// The key it holds when its route is ordered (`None`: unordered).
    pub order: Option<OrderKey>,
}

/// The state a new delivery is created in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStart {
    /// Pending, for the handler's worker to claim.
    Pending,
    /// Already claimed, in flight with this lease: intake reserved a slot of the handler and
    /// hands the delivery over directly once it is committed.
    Claimed(Duration),
    /// Already delivered by this attempt, which a handler that runs at intake (see
    /// [`Handler::runs_at_intake`](crate::handlers::Handler::runs_at_intake)) made before the
    /// commit.
    Delivered(SuccessRecord),
}

/// A successful attempt, as kept in its delivery's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuccessRecord {
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration: Duration,
}

/// A delivery a worker has claimed: run it, then [`Store::finish`] it.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Delivery id.
    pub delivery_id: i64,
    /// Route that created it.
    pub route: String,
    /// Attempt number this run is (1 for the first since creation or replay).
    pub attempt: u32,
    /// When the delivery was created or last replayed: the start of its retry budget.
    pub since: DateTime<Utc>,
    /// Whether it holds a key of an ordered route: finishing it may let the next of its key go.
    pub ordered: bool,
    /// The event, as stored.
    pub event: StoredEvent,
}

/// An event as the inbox keeps it: the envelope's fields, with the source by name. The store
/// knows no provider; dispatch turns this back into an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The source's name (`chatbrick`, `livedesk`).
    pub source: String,
    /// Endpoint that received it.
    pub endpoint: String,
    /// The provider's id.
    pub provider_id: String,
    /// Wire event type.
    pub event_type: String,
    /// When hookline received it.
    pub received_at: DateTime<Utc>,
    /// Why the body did not fit the provider's types, when it did not.
    pub decode_error: Option<String>,
    /// The exact bytes the provider sent.
    pub body: Bytes,
}

/// What one attempt did, recorded for the inspector.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration: Duration,
    /// HTTP status, for handlers that speak HTTP.
    pub http_status: Option<u16>,
    /// The error, when it failed.
    pub error: Option<String>,
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Done.
    Delivered,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// Give up: dead letter, until replayed.
    Dead,
}

impl NextStep {
    /// The attempt's outcome as the inspector and metrics name it: `delivered`, `retry`, `dead`.
    pub fn outcome(self) -> &'static str {
        match self {
            NextStep::Delivered => "delivered",
            NextStep::RetryAt(_) => "retry",
            NextStep::Dead => "dead",
        }
    }
}

/// Filter for listing events and dead letters. Every field narrows; empty means all.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct EventFilter {
    /// Only this source (by name).
    pub source: Option<String>,
    /// Only this exact event type.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// Only events in this state: `pending`, `delivered`, `dead`, `unrouted` or `undecodable`.
    pub status: Option<String>,
    /// Only this route (dead letters).
    pub route: Option<String>,
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Received before.
    pub until: Option<DateTime<Utc>>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Only events older than this sequence number (paging).
    pub before: Option<i64>,
    /// Only events newer than this sequence number (what arrived since a listing was read).
    pub after: Option<i64>,
    /// Only events about this contact or conversation id (the ids of [`KeyIds`](crate::envelope::KeyIds)
    /// `contact` and `conversation` that the event had when it was stored).
    pub about: Option<String>,
    /// Only deliveries whose last error is exactly this text (dead letters).
    pub error: Option<String>,
}

/// One line of an event listing.
#[derive(Debug, Clone, Serialize)]
pub struct EventSummary {
    /// Store sequence number (paging cursor).
    pub seq: i64,
    /// hookline event id.
    pub id: String,
    /// Source name.
    pub source: String,
    /// Endpoint.
    pub endpoint: String,
    /// Provider's id.
    pub provider_id: String,
    /// Event type.
    pub event_type: String,
    /// Received time.
    pub received_at: DateTime<Utc>,
    /// Decode error, when the body did not fit the types.
    pub decode_error: Option<String>,
    /// `pending`, `delivered`, `dead` or `unrouted`.
    pub status: String,
}

/// One event with its deliveries and their attempts.
#[derive(Debug, Clone, Serialize)]
pub struct EventDetail {
    /// The listing fields.
    #[serde(flatten)]
    pub summary: EventSummary,
    /// The body as text (bodies are JSON), or null once pruned.
    pub body: Option<String>,
    /// Deliveries.
    pub deliveries: Vec<DeliveryInfo>,
}

/// One delivery as the inspector shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryInfo {
    /// Delivery id (for replay).
    pub id: i64,
    /// Event id.
    pub event_id: String,
    /// Route.
    pub route: String,
    /// Handler.
    pub handler: String,
    /// `pending`, `inflight`, `delivered` or `dead`.
    pub state: String,
    /// Attempts since creation or the last replay.
    pub attempts: u32,
    /// Next attempt time (pending) or last update.
    pub due_at: DateTime<Utc>,
    /// Last error.
    pub last_error: Option<String>,
    /// Every attempt, oldest first (only in event detail).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<AttemptInfo>,
}

/// One recorded attempt.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptInfo {
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// `delivered`, `retry` or `dead`.
    pub outcome: String,
    /// HTTP status.
    pub http_status: Option<u16>,
    /// Error text.
    pub error: Option<String>,
}

/// Counts of deliveries by state, for metrics and readiness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    /// Waiting for their next attempt.
    pub pending: u64,
    /// Being attempted now.
    pub inflight: u64,
    /// Dead letters.
    pub dead: u64,
}

/// Events received in one minute from one source with one type: the inspector's activity chart
/// and the event types its filter offers, read without counting the events themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MinuteCount {
    /// The start of the minute.
    pub minute: DateTime<Utc>,
    /// Source name.
    pub source: String,
    /// Event type.
    pub event_type: String,
    /// Events stored (duplicates are not).
    pub events: u64,
    /// Of those, how many did not decode.
    pub undecodable: u64,
}

/// An event type seen in the inbox, with its source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct EventType {
    /// Source name.
    pub source: String,
    /// Event type.
    pub event_type: String,
}

/// The open work: what waits, what is dead, and how long the oldest has been waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Backlog {
    /// Deliveries by state.
    pub deliveries: DeliveryCounts,
    /// Events with a delivery that is pending or in flight.
    pub events_pending: u64,
    /// Events with a dead delivery.
    pub events_dead: u64,
    /// Since when the oldest pending or in-flight delivery has waited (its creation or last
    /// replay); `None` when nothing waits.
    pub oldest_waiting_since: Option<DateTime<Utc>>,
}

/// Dead letters counted by route and by error, for a filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeadLetterGroups {
    /// How many match in all.
    pub total: u64,
    /// By route, most first.
    pub by_route: Vec<GroupCount>,
    /// By last error, most first (the 50 largest groups).
    pub by_error: Vec<GroupCount>,
}

/// One group of [`DeadLetterGroups`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupCount {
    /// The route or error text (`None`: a dead letter without an error text).
    pub key: Option<String>,
    /// How many.
    pub count: u64,
}

/// Most error groups [`Store::dead_letter_groups`] returns.
pub const MAX_ERROR_GROUPS: usize = 50;

/// What a pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneStats {
    /// Events deleted with their deliveries and attempts.
    pub events_deleted: u64,
    /// Bodies dropped from events kept only for dedupe.
    pub bodies_dropped: u64,
}

/// Whether a delivery found in `state` may be replayed (`None`: neither it nor its event's body
/// exists): the refusals every store gives, with the same words.
pub(crate) fn replayable(delivery_id: i64, state: Option<&str>) -> Result<(), StoreError> {
    match state {
        None => Err(StoreError::NotFound(format!(
            "delivery {delivery_id} (or its event body)"
        ))),
        Some("inflight") => Err(StoreError::Conflict(format!(
            "delivery {delivery_id} is being attempted right now"
        ))),
        Some(_) => Ok(()),
    }
}

/// Which in-flight deliveries [`Store::release_leases`] puts back in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leases {
    /// Those whose lease has run out: their worker died or hung.
    Expired,
    /// What a process that starts finds in flight and no running worker can hold: every lease
    /// in a store that one process uses at a time (SQLite, in its data directory), since nothing
    /// can be running yet; only the expired ones in a store that replicas share (PostgreSQL),
    /// where a fresh lease belongs to a delivery another replica is running.
    LeftAtStart,
}

/// Work that became due in a store shared with other processes, for this process's workers
/// (see [`Store::due_work`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DueWork {
    /// This handler has deliveries due now: committed pending, released, expedited or replayed
    /// by any process that uses the store.
    Handler(String),
    /// Any handler may have: notices may have been missed (after a reconnection).
    AnyHandler,
}

/// The inbox interface. Implementations must make `insert` durable before returning `Ok`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Commits an event and its deliveries, or reports it as a duplicate. The event is kept
    /// with the contact and conversation of its [`Envelope::key_ids`] (for
    /// [`EventFilter::about`]) and counted in its minute (for [`Store::activity`]).
    async fn insert(
        &self,
        envelope: &Envelope,
        deliveries: Vec<NewDelivery>,
    ) -> Result<InsertOutcome, StoreError>;

    /// Claims up to `limit` due deliveries of `handler`, leasing them for `lease`.
    async fn claim(
        &self,
        handler: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// Records an attempt and moves the delivery on.
    async fn finish(
        &self,
        delivery_id: i64,
        attempt: AttemptRecord,
        next: NextStep,
    ) -> Result<(), StoreError>;

    /// Puts in-flight deliveries back in the queue, those that `which` says; returns how many.
    async fn release_leases(&self, which: Leases) -> Result<u64, StoreError>;

    /// Makes every pending delivery of `handler` due now (its target is back after failures).
    async fn expedite(&self, handler: &str) -> Result<u64, StoreError>;

    /// Lists events, newest first.
    async fn list_events(&self, filter: EventFilter) -> Result<Vec<EventSummary>, StoreError>;

    /// One event by hookline id, with deliveries and attempts.
    async fn event(&self, id: &str) -> Result<Option<EventDetail>, StoreError>;

    /// Dead letters, newest first.
    async fn dead_letters(&self, filter: EventFilter) -> Result<Vec<DeliveryInfo>, StoreError>;

    /// Makes one delivery due now with a fresh retry budget.
    async fn replay_delivery(&self, delivery_id: i64) -> Result<(), StoreError>;

    /// Makes every delivery of an event due now, creating those for `routes` it lacks.
    async fn replay_event(&self, id: &str, routes: Vec<NewDelivery>) -> Result<u64, StoreError>;

    /// Replays every dead letter that matches the filter; returns how many.
    async fn replay_dead(&self, filter: EventFilter) -> Result<u64, StoreError>;

    /// Deletes what is older than the dedupe window and retention, keeping unfinished work. A
    /// store that replicas share prunes on one of them at a time: a pass that finds another
    /// replica's pass running does nothing.
    async fn prune(
        &self,
        dedupe_window: Duration,
        retention: Duration,
    ) -> Result<PruneStats, StoreError>;

    /// Delivery counts by state.
    async fn counts(&self) -> Result<DeliveryCounts, StoreError>;

    /// When the oldest delivery that still waits to be done (pending or in flight; dead letters
    /// wait for an operator, not for dispatch) was created or last replayed; `None` when none
    /// waits. The backlog-age alert watches it: a handler failing or too slow for its load.
    /// The default, for stores that keep nothing (benchmarks, tests), says none waits; a store
    /// that keeps deliveries implements it (the conformance suite checks it does).
    async fn oldest_waiting(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(None)
    }

    /// The store's size in bytes as it counts toward `store.max_size`, for the alert that warns
    /// before intake starts answering 503; `None` for a store without such a bound.
    async fn size(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// Notices of work that other processes made due, for a store that several processes share;
    /// `None` for one that only this process uses, where intake's and dispatch's own wake-ups
    /// see everything. Every call subscribes anew.
    fn due_work(&self) -> Option<broadcast::Receiver<DueWork>> {
        None
    }

    /// Whether the store can be expected to commit now: `false` while it is known to be
    /// unreachable, so that readiness says so before a request fails.
    fn is_available(&self) -> bool {
        true
    }

    /// Events stored per minute, source and type, for the minutes from `since` on, oldest
    /// first; kept as long as the events' ids are (the dedupe window).
    async fn activity(&self, since: DateTime<Utc>) -> Result<Vec<MinuteCount>, StoreError>;

    /// Every event type stored within the dedupe window, with its source, sorted.
    async fn event_types(&self) -> Result<Vec<EventType>, StoreError>;

    /// The open work, for the inspector's overview.
    async fn backlog(&self) -> Result<Backlog, StoreError>;

    /// The dead letters that match the filter (as [`Store::dead_letters`] reads it, without
    /// its limit), counted by route and by error.
    async fn dead_letter_groups(&self, filter: EventFilter)
        -> Result<DeadLetterGroups, StoreError>;

    /// The keys of ordered routes that a dead letter holds back, oldest first (at most 1000).
    /// The defaults of this and the next two, for stores that keep nothing (benchmarks,
    /// tests), know no ordered work; a store that keeps deliveries implements them (the
    /// conformance suite checks it does).
    async fn blocked_keys(&self) -> Result<Vec<BlockedKey>, StoreError> {
        Ok(Vec::new())
    }

    /// Lets the key that dead letter `delivery_id` holds back go: the delivery stays a dead
    /// letter (and can be replayed) but no longer holds its key. `NotFound` unless it is a dead
    /// letter that holds back its key.
    async fn skip_blocked(&self, delivery_id: i64) -> Result<(), StoreError> {
        Err(StoreError::NotFound(format!(
            "dead letter {delivery_id} holding back its key"
        )))
    }

    /// Ordered routes with blocked keys or held-back deliveries, for metrics.
    async fn ordered_routes(&self) -> Result<Vec<OrderedRoute>, StoreError> {
        Ok(Vec::new())
    }
}
