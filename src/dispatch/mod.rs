//! Delivering stored events to handlers: one worker loop per handler claims due deliveries from
//! the store (up to the handler's concurrency), runs them with a timeout, records every attempt
//! and schedules the retry or the dead letter. All state lives in the store, so a restart
//! resumes where the last run stopped.

pub mod retry;
pub mod routes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::handlers::{Handler, HandlerError};
use crate::metrics;
use crate::shutdown::Shutdown;
use crate::store::{AttemptRecord, Claimed, NextStep, Store};

pub use retry::RetryPolicy;
pub use routes::Router;

/// How long a worker with nothing to do sleeps before looking again (it is also woken by intake).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How long a worker waits after a store error before trying again.
const ERROR_PAUSE: Duration = Duration::from_secs(1);
/// How often expired leases are reclaimed.
const LEASE_CHECK: Duration = Duration::from_secs(15);
/// Most deliveries claimed in one store round trip.
const MAX_CLAIM: usize = 256;

/// A handler to run: its name (as routes refer to it), the code, and its concurrency limit.
pub type HandlerEntry = (String, Arc<dyn Handler>, usize);

/// A handler as dispatch runs it: the code, its concurrency limit and its wake-up call.
struct Slot {
    /// Handler name, as routes and the store know it.
    name: String,
    /// The code.
    handler: Arc<dyn Handler>,
    /// Free delivery slots; a permit is held for the whole of each attempt.
    permits: Arc<Semaphore>,
    /// Concurrency limit (the semaphore's size).
    concurrency: usize,
    /// Rung by intake when a new delivery for this handler is committed.
    wake: Notify,
}

/// Runs deliveries. Shared as `Arc<Dispatcher>` between intake (to wake it) and its workers.
pub struct Dispatcher {
    /// The inbox.
    store: Arc<dyn Store>,
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
                    concurrency,
                    wake: Notify::new(),
                };
                (name, Arc::new(slot))
            })
            .collect();
        Dispatcher {
            store,
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

    /// Lease on a claimed delivery: past it, a delivery whose worker vanished is retried.
    fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(30)
    }

    /// Releases what a previous run left in flight, then runs one worker per handler and the
    /// lease reclaimer until shutdown; returns once running attempts finished or the grace
    /// period ran out (what is left resumes on the next start).
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        match self.store.release_leases(false).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "resuming deliveries left in flight"),
            Err(e) => tracing::error!(error = %e, "cannot release in-flight deliveries"),
        }
        let mut workers = JoinSet::new();
        for slot in self.slots.values() {
            workers.spawn(self.clone().worker(slot.clone(), shutdown.clone()));
        }
        workers.spawn(self.clone().reclaim_leases(shutdown.clone()));
        while workers.join_next().await.is_some() {}
    }

    /// Puts deliveries whose lease expired back in the queue, every [`LEASE_CHECK`].
    async fn reclaim_leases(self: Arc<Self>, mut shutdown: Shutdown) {
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(LEASE_CHECK) => {}
            }
            match self.store.release_leases(true).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(deliveries = n, "reclaimed deliveries whose lease expired"),
                Err(e) => tracing::warn!(error = %e, "cannot reclaim expired leases"),
            }
        }
    }

    /// One handler's loop: wait for a free slot, claim, spawn, repeat.
    async fn worker(self: Arc<Self>, slot: Arc<Slot>, mut shutdown: Shutdown) {
        let mut running = JoinSet::new();
        loop {
            while running.try_join_next().is_some() {}
            let first = tokio::select! {
                _ = shutdown.wait() => break,
                permit = slot.permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let wanted = (1 + slot.permits.available_permits()).min(MAX_CLAIM);
            match self.store.claim(&slot.name, wanted, self.lease()).await {
                Ok(claimed) if claimed.is_empty() => {
                    drop(first);
                    tokio::select! {
                        _ = shutdown.wait() => break,
                        _ = slot.wake.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
                Ok(claimed) => self.spawn_all(&slot, claimed, first, &mut running),
                Err(e) => {
                    drop(first);
                    tracing::warn!(handler = %slot.name, error = %e, "cannot claim deliveries");
                    tokio::select! {
                        _ = shutdown.wait() => break,
                        _ = tokio::time::sleep(ERROR_PAUSE) => {}
                    }
                }
            }
        }
        self.drain(&slot, running).await;
    }

    /// Starts one task per claimed delivery, each holding a permit.
    fn spawn_all(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        claimed: Vec<Claimed>,
        first: OwnedSemaphorePermit,
        running: &mut JoinSet<()>,
    ) {
        let mut first = Some(first);
        for delivery in claimed {
            // Only this worker takes permits from this semaphore, so they are free.
            let permit = match first.take() {
                Some(permit) => Some(permit),
                None => slot.permits.clone().try_acquire_owned().ok(),
            };
            let this = self.clone();
            let slot = slot.clone();
            running.spawn(async move {
                this.attempt(&slot, delivery).await;
                drop(permit);
            });
        }
    }

    /// Waits for running attempts until the grace period ends; the rest resume on next start.
    async fn drain(&self, slot: &Slot, mut running: JoinSet<()>) {
        let deadline = tokio::time::sleep(self.grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = running.join_next() => if next.is_none() { return },
                _ = &mut deadline => {
                    tracing::warn!(handler = %slot.name, unfinished = running.len(),
                        "shutdown grace period over; unfinished deliveries resume on next start");
                    running.abort_all();
                    return;
                }
            }
        }
    }

    /// Runs one attempt and records it.
    async fn attempt(&self, slot: &Slot, delivery: Claimed) {
        let started_at = Utc::now();
        let clock = Instant::now();
        let result =
            match tokio::time::timeout(self.timeout, slot.handler.handle(&delivery.envelope)).await
            {
                Ok(result) => result,
                Err(_) => Err(HandlerError::retryable(format!(
                    "timed out after {}",
                    humantime::format_duration(self.timeout)
                ))),
            };
        let duration = clock.elapsed();
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
        metrics::attempt(&slot.name, next, duration);
        if let Err(e) = self.store.finish(delivery.delivery_id, record, next).await {
            tracing::error!(handler = %slot.name, delivery = delivery.delivery_id, error = %e,
                "cannot record attempt; the delivery will be retried when its lease expires");
        }
    }

    /// Handler names and their concurrency limits.
    pub fn handlers(&self) -> Vec<(String, usize)> {
        self.slots
            .values()
            .map(|s| (s.name.clone(), s.concurrency))
            .collect()
    }
}

fn log_failure(handler: &str, delivery: &Claimed, error: &HandlerError, next: NextStep) {
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
