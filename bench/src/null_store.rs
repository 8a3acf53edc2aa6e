//! hookline with a store that keeps nothing: the request path alone (HTTP, verification,
//! decoding, routing, the `log` handler, the acknowledgement) with no commit and no fsync. Its
//! throughput is the most any store could let hookline reach on this machine, so the benchmark
//! can say how much of a durable event's time is storage (docs/performance.md).
//!
//! It runs as a child process like hookline (`hookline-bench --null-store-server`), configured by
//! the same `HOOKLINE_*` environment, on the same runtime and log subscriber as `hookline serve`.
//! It is a measuring device, never a way to run hookline: nothing it acknowledges is kept.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hookline::config::Config;
use hookline::server::{process, ServerBuilder};
use hookline::store::{
    AttemptRecord, Backlog, Claimed, DeadLetterGroups, DeliveryCounts, DeliveryInfo, EventDetail,
    EventFilter, EventSummary, EventType, InsertOutcome, Leases, MinuteCount, NewDelivery,
    NextStep, PruneStats, Store, StoreError,
};
use hookline::Envelope;

use crate::signals::interrupted;

/// A [`Store`] that acknowledges every event without keeping it, and has nothing to claim,
/// list or replay.
#[derive(Debug)]
pub struct NullStore;

#[async_trait]
impl Store for NullStore {
    async fn insert(
        &self,
        _envelope: &Envelope,
        deliveries: Vec<NewDelivery>,
    ) -> Result<InsertOutcome, StoreError> {
        Ok(InsertOutcome::Stored {
            delivery_ids: (1..=deliveries.len() as i64).collect(),
        })
    }

    async fn claim(&self, _: &str, _: usize, _: Duration) -> Result<Vec<Claimed>, StoreError> {
        Ok(Vec::new())
    }

    async fn finish(&self, _: i64, _: AttemptRecord, _: NextStep) -> Result<(), StoreError> {
        Ok(())
    }

    async fn release_leases(&self, _: Leases) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn expedite(&self, _: &str) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn list_events(&self, _: EventFilter) -> Result<Vec<EventSummary>, StoreError> {
        Ok(Vec::new())
    }

    async fn event(&self, _: &str) -> Result<Option<EventDetail>, StoreError> {
        Ok(None)
    }

    async fn dead_letters(&self, _: EventFilter) -> Result<Vec<DeliveryInfo>, StoreError> {
        Ok(Vec::new())
    }

    async fn replay_delivery(&self, delivery_id: i64) -> Result<(), StoreError> {
        Err(StoreError::NotFound(format!("delivery {delivery_id}")))
    }

    async fn replay_event(&self, id: &str, _: Vec<NewDelivery>) -> Result<u64, StoreError> {
        Err(StoreError::NotFound(format!("event {id}")))
    }

    async fn replay_dead(&self, _: EventFilter) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn prune(&self, _: Duration, _: Duration) -> Result<PruneStats, StoreError> {
        Ok(PruneStats::default())
    }

    async fn counts(&self) -> Result<DeliveryCounts, StoreError> {
        Ok(DeliveryCounts::default())
    }

    async fn activity(
        &self,
        _: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<MinuteCount>, StoreError> {
        Ok(Vec::new())
    }

    async fn event_types(&self) -> Result<Vec<EventType>, StoreError> {
        Ok(Vec::new())
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        Ok(Backlog::default())
    }

    async fn dead_letter_groups(&self, _: EventFilter) -> Result<DeadLetterGroups, StoreError> {
        Ok(DeadLetterGroups::default())
    }
}

/// Serves hookline with a [`NullStore`], configured by the environment, until SIGTERM.
pub fn run_server() -> ExitCode {
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = match Config::load(None, &env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("null-store server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match process::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("null-store server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config))
}

/// Starts the server and stops it gracefully on SIGTERM or Ctrl-C.
async fn serve(config: Config) -> ExitCode {
    process::init_logging(&config.log);
    let server = match ServerBuilder::new(config)
        .store(Arc::new(NullStore))
        .start()
        .await
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("null-store server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    interrupted().await;
    server.shutdown();
    server.wait().await;
    ExitCode::SUCCESS
}
