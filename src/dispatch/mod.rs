//! Delivering stored events to handlers: one worker loop per handler claims due deliveries from
//! the store (up to the handler's concurrency), runs them with a timeout, records every attempt
//! and schedules the retry or the dead letter. All state lives in the store, so a restart
//! resumes where the last run stopped.

pub mod replay;
pub mod retry;
pub mod routes;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::envelope::{Envelope, Sources};
use crate::handlers::{Handler, HandlerError};
use crate::metrics;
use crate::shutdown::Shutdown;
use crate::store::{AttemptRecord, Claimed, DueWork, Leases, NextStep, Store, SuccessRecord};

pub use replay::Replayer;
pub use retry::RetryPolicy;
pub use routes::Router;

/// How long a worker with nothing to do sleeps before looking again (it is also woken by intake).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How long a worker waits after a store error before trying again.
const ERROR_PAUSE: Duration = Duration::from_secs(1);
/// How often expired leases are reclaimed.
const LEASE_CHECK: Duration = Duration::from_secs(15);
/// How often shutdown checks whether running attempts are recorded.
const DRAIN_POLL: Duration = Duration::from_millis(10);
/// Most deliveries claimed in one store round trip.
const MAX_CLAIM: usize = 256;

/// A handler to run: its name (as routes refer to it), the code, and its concurrency limit.
pub type HandlerEntry = (String, Arc<dyn Handler>, usize);

/// A handler as dispatch runs it: the code, its slots and its wake-up call.
struct Slot {
    /// Handler name, as routes and the store know it.
    name: String,
    /// The code.
    handler: Arc<dyn Handler>,
    /// Free delivery slots; a permit is held while the handler runs.
    permits: Arc<Semaphore>,
    /// Rung by intake when a new delivery for this handler is committed.
    wake: Notify,
    /// Attempts started and not yet recorded; shutdown waits for it to reach zero.
    unrecorded: AtomicUsize,
    /// Set by a retryable failure, cleared by the next success, which then makes the handler's
    /// waiting retries due at once: when a target comes back, its backlog does not sit out
    /// backoffs of up to `max_backoff`.
    failing: AtomicBool,
}

/// A slot of a handler, reserved by intake for a delivery it will hand over once committed.
/// Dropping it frees the slot (when the commit fails or the event was a duplicate).
pub struct Reservation {
    /// The handler.
    slot: Arc<Slot>,
    /// The slot.
    permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("handler", &self.slot.name)
            .finish()
    }
}

/// A delivery to run: claimed from the store, or handed over by intake right after its commit.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Delivery id.
    pub delivery_id: i64,
    /// Attempt number this run is (1 for the first since creation or replay).
    pub attempt: u32,
    /// When the delivery was created or last replayed: the start of its retry budget.
    pub since: DateTime<Utc>,
    /// Whether it holds a key of an ordered route (intake never hands those over).
    pub ordered: bool,
    /// The event (shared: intake hands its decoded envelope straight over).
    pub envelope: Arc<Envelope>,
}

/// Runs deliveries. Shared as `Arc<Dispatcher>` between intake (to wake it) and its workers.
pub struct Dispatcher {
    /// The inbox.
    store: Arc<dyn Store>,
    /// The sources this build serves, to turn claimed events back into envelopes.
    sources: Sources,
    /// Handlers by name.
    slots: HashMap<String, Arc<Slot>>,
    /// Retry schedule.
    policy: RetryPolicy,
    /// Time one attempt may take.
    timeout: Duration,
    /// How long workers wait for running attempts on shutdown.
    grace: Duration,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("handlers", &self.slots.keys().collect::<Vec<_>>())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher for these handlers: `(name, handler, concurrency)`.
    pub fn new(
        store: Arc<dyn Store>,
        sources: Sources,
        handlers: Vec<HandlerEntry>,
        policy: RetryPolicy,
        timeout: Duration,
        grace: Duration,
    ) -> Dispatcher {
        let slots = handlers
            .into_iter()
            .map(|(name, handler, concurrency)| {
                let concurrency = concurrency.max(1);
                let slot = Slot {
                    name: name.clone(),
                    handler,
                    permits: Arc::new(Semaphore::new(concurrency)),
                    wake: Notify::new(),
                    unrecorded: AtomicUsize::new(0),
                    failing: AtomicBool::new(false),
                };
                (name, Arc::new(slot))
            })
            .collect();
        Dispatcher {
            store,
            sources,
            slots,
            policy,
            timeout,
            grace,
        }
    }

    /// Tells the handler's worker that a delivery is waiting.
    pub fn wake(&self, handler: &str) {
        if let Some(slot) = self.slots.get(handler) {
            slot.wake.notify_one();
        }
    }

    /// Releases what a previous run left in flight (what the store can tell is no longer
    /// running: see [`Leases::LeftAtStart`]), then runs one worker per handler, the lease
    /// reclaimer and, for a store that replicas share, the follower of their notices until
    /// shutdown; returns once running attempts finished or the grace period ran out (what is
    /// left resumes on the next start).
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        match self.store.release_leases(Leases::LeftAtStart).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "resuming deliveries left in flight"),
            Err(e) => tracing::error!(error = %e, "cannot release in-flight deliveries"),
        }
        let mut workers = JoinSet::new();
        for slot in self.slots.values() {
            workers.spawn(self.clone().worker(slot.clone(), shutdown.clone()));
        }
        workers.spawn(self.clone().reclaim_leases(shutdown.clone()));
        if let Some(notices) = self.store.due_work() {
            workers.spawn(self.clone().follow(notices, shutdown.clone()));
        }
        while workers.join_next().await.is_some() {}
    }

    /// Wakes the workers of the handlers that other replicas made work due for (a delivery
    /// committed pending there, a replay, an expedite after their target came back), so that
    /// whichever replica has a free slot picks it up at once.
    async fn follow(self: Arc<Self>, mut notices: Receiver<DueWork>, mut shutdown: Shutdown) {
        loop {
            let notice = tokio::select! {
                _ = shutdown.wait() => return,
                notice = notices.recv() => notice,
            };
            match notice {
                Ok(DueWork::Handler(handler)) => self.wake(&handler),
                Ok(DueWork::AnyHandler) | Err(RecvError::Lagged(_)) => self.wake_all(),
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Puts deliveries whose lease expired back in the queue, every [`LEASE_CHECK`].
    async fn reclaim_leases(self: Arc<Self>, mut shutdown: Shutdown) {
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(LEASE_CHECK) => {}
            }
            match self.store.release_leases(Leases::Expired).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(deliveries = n, "reclaimed deliveries whose lease expired"),
                Err(e) => tracing::warn!(error = %e, "cannot reclaim expired leases"),
            }
        }
    }

    /// One handler's loop: wait for free slots, claim that many due deliveries, start them,
    /// repeat; on shutdown, wait for running attempts.
    async fn worker(self: Arc<Self>, slot: Arc<Slot>, mut shutdown: Shutdown) {
        loop {
            let first = tokio::select! {
                _ = shutdown.wait() => break,
                permit = slot.permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            // Intake reserves permits too (for direct hand-over), so take them before claiming.
            let mut permits = vec![first];
            while permits.len() < MAX_CLAIM {
                match slot.permits.clone().try_acquire_owned() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
            match self
                .store
                .claim(&slot.name, permits.len(), self.lease())
                .await
            {
                Ok(claimed) if claimed.is_empty() => {
                    drop(permits);
                    tokio::select! {
                        _ = shutdown.wait() => break,
                        _ = slot.wake.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
                Ok(claimed) => {
                    for (claimed, permit) in claimed.into_iter().zip(permits) {
                        let delivery = self.restore(claimed);
                        self.start(&slot, delivery, permit);
                    }
                }
                Err(e) => {
                    drop(permits);
                    tracing::warn!(handler = %slot.name, error = %e, "cannot claim deliveries");
                    tokio::select! {
                        _ = shutdown.wait() => break,
                        _ = tokio::time::sleep(ERROR_PAUSE) => {}
                    }
                }
            }
        }
        self.drain(&slot).await;
    }

    /// The delivery a claim stands for, its event rebuilt as an envelope (decoded lazily).
    fn restore(&self, claimed: Claimed) -> Delivery {
        let event = claimed.event;
        let source = self.sources.get(&event.source).unwrap_or_else(|| {
            tracing::warn!(source = %event.source, delivery = claimed.delivery_id,
                "stored event of a source this build does not serve; delivering it raw");
            crate::envelope::UNKNOWN_SOURCE
        });
        let envelope = Envelope::restore(
            source,
            event.endpoint,
            event.provider_id,
            event.event_type,
            event.received_at,
            event.decode_error,
            event.body,
        );
        Delivery {
            delivery_id: claimed.delivery_id,
            attempt: claimed.attempt,
            since: claimed.since,
            ordered: claimed.ordered,
            envelope: Arc::new(envelope),
        }
    }

    /// Runs one attempt in its own task, holding a slot of the handler while the handler runs.
    fn start(self: &Arc<Self>, slot: &Arc<Slot>, delivery: Delivery, permit: OwnedSemaphorePermit) {
        let (this, slot) = (self.clone(), slot.clone());
        slot.unrecorded.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            this.attempt(&slot, delivery, permit).await;
            slot.unrecorded.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Reserves a slot of `handler` for a delivery that intake is about to commit, so that it
    /// can be handed over without a claim; `None` when the handler is busy (the delivery is then
    /// committed pending, for the worker).
    pub fn reserve(&self, handler: &str) -> Option<Reservation> {
        let slot = self.slots.get(handler)?;
        let permit = slot.permits.clone().try_acquire_owned().ok()?;
        Some(Reservation {
            slot: slot.clone(),
            permit,
        })
    }

    /// Runs `handler` on an event that intake is about to commit, if it is one that
    /// [runs at intake](Handler::runs_at_intake): its delivery is then committed as done by the
    /// returned attempt (which intake counts in the metrics once it is committed). `None` when
    /// it is not such a handler, or when it failed (logged here; the delivery is then committed
    /// as usual and dispatch tries again). A handler that panics has failed (see `guarded`):
    /// the request that carries the event must still be answered, and the event stored.
    pub async fn run_at_intake(&self, handler: &str, envelope: &Envelope) -> Option<SuccessRecord> {
        let slot = self.slots.get(handler)?;
        if !slot.handler.runs_at_intake() {
            return None;
        }
        let started_at = Utc::now();
        let clock = Instant::now();
        let result = guarded(slot.handler.as_ref(), envelope).await;
        let duration = clock.elapsed();
        match result {
            Ok(()) => Some(SuccessRecord {
                started_at,
                duration,
            }),
            Err(error) => {
                tracing::warn!(handler, event_id = %envelope.id, error = %error.message,
                    "handler failed at intake; its delivery goes to dispatch");
                None
            }
        }
    }

    /// Starts a committed delivery that was created already claimed with a reservation's slot.
    pub fn hand_over(self: &Arc<Self>, reservation: Reservation, delivery: Delivery) {
        self.start(&reservation.slot, delivery, reservation.permit);
    }

    /// Lease of a claimed delivery: past it, a delivery whose worker vanished is retried.
    pub fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(30)
    }

    /// Waits until every started attempt is recorded, at most the grace period; what is still
    /// running then resumes on the next start.
    async fn drain(&self, slot: &Slot) {
        let recorded = async {
            while slot.unrecorded.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(DRAIN_POLL).await;
            }
        };
        if tokio::time::timeout(self.grace, recorded).await.is_err() {
            tracing::warn!(handler = %slot.name,
                "shutdown grace period over; unfinished deliveries resume on next start");
        }
    }

    /// Runs one attempt and records it. The slot is freed as soon as the handler returns: the
    /// concurrency limit protects the handler's target, and the delivery stays in flight (so
    /// nothing claims it again) until its attempt is recorded.
    async fn attempt(&self, slot: &Slot, delivery: Delivery, permit: OwnedSemaphorePermit) {
        let started_at = Utc::now();
        let clock = Instant::now();
        let result = match tokio::time::timeout(
            self.timeout,
            guarded(slot.handler.as_ref(), &delivery.envelope),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(HandlerError::retryable(format!(
                "timed out after {}",
                humantime::format_duration(self.timeout)
            ))),
        };
        let duration = clock.elapsed();
        drop(permit);
        let (next, record) = match result {
            Ok(()) => (
                NextStep::Delivered,
                AttemptRecord {
                    started_at,
                    duration,
                    http_status: None,
                    error: None,
                },
            ),
            Err(error) => {
                let next =
                    self.policy
                        .after_failure(delivery.attempt, delivery.since, &error, Utc::now());
                log_failure(&slot.name, &delivery, &error, next);
                (
                    next,
                    AttemptRecord {
                        started_at,
                        duration,
                        http_status: error.http_status,
                        error: Some(error.message),
                    },
                )
            }
        };
        metrics::attempt(&slot.name, next.outcome(), duration);
        self.note_health(slot, next).await;
        if let Err(e) = self.store.finish(delivery.delivery_id, record, next).await {
            tracing::error!(handler = %slot.name, delivery = delivery.delivery_id, error = %e,
                "cannot record attempt; the delivery will be retried when its lease expires");
        }
        if delivery.ordered {
            // The next delivery of its key may go now: no notice says so (it was pending all
            // along), so the worker looks at once rather than at its next idle poll.
            slot.wake.notify_one();
        }
    }

    /// Tracks whether the handler's target is failing; on its first success after failures,
    /// makes the deliveries waiting out a backoff due now and wakes the worker.
    async fn note_health(&self, slot: &Slot, next: NextStep) {
        match next {
            NextStep::RetryAt(_) => slot.failing.store(true, Ordering::Relaxed),
            NextStep::Delivered if slot.failing.swap(false, Ordering::Relaxed) => {
                match self.store.expedite(&slot.name).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(handler = %slot.name, deliveries = n,
                            "handler succeeded again; retrying its waiting deliveries now");
                        slot.wake.notify_one();
                    }
                    Err(e) => tracing::warn!(handler = %slot.name, error = %e,
                        "cannot expedite waiting deliveries; they keep their backoff"),
                }
            }
            _ => {}
        }
    }

    /// Tells every handler's worker to look for due deliveries (after a replay).
    pub fn wake_all(&self) {
        for slot in self.slots.values() {
            slot.wake.notify_one();
        }
    }
}

/// Runs the handler; a panic in it is a failure like any other (retried, recorded), not the end
/// of the task that runs it, which would leave its delivery in flight until the lease expires.
async fn guarded(handler: &dyn Handler, event: &Envelope) -> Result<(), HandlerError> {
    AssertUnwindSafe(handler.handle(event))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(HandlerError::retryable("the handler panicked")))
}

fn log_failure(handler: &str, delivery: &Delivery, error: &HandlerError, next: NextStep) {
    let event_id = delivery.envelope.id.as_str();
    match next {
        NextStep::Dead => tracing::warn!(
            handler, event_id, delivery = delivery.delivery_id, attempt = delivery.attempt,
            status = error.http_status, error = %error.message, "delivery dead-lettered"
        ),
        NextStep::RetryAt(at) => tracing::info!(
            handler, event_id, delivery = delivery.delivery_id, attempt = delivery.attempt,
            status = error.http_status, error = %error.message, retry_at = %at, "delivery failed; will retry"
        ),
        NextStep::Delivered => {}
    }
}
