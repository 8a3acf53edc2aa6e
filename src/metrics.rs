//! Prometheus metrics, recorded through the `metrics` facade and rendered at the admin
//! listener's `/metrics`.
//!
//! Every label value is bounded: sources, configured endpoint names, outcome reasons, handler
//! names, and event types (which come only from authenticated requests).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::envelope::Source;
use crate::store::{DeliveryCounts, NextStep};

/// Buckets for request, commit and handler latencies, in seconds (100 µs to 30 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];
/// Buckets for the number of jobs per store commit.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder for this process (once; later calls reuse it) and returns
/// the handle that renders the text format. `None` if another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("hookline_store_commit_batch_size".into()),
                        BATCH_BUCKETS,
                    )
                });
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// One webhook request and what became of it (`accepted`, `duplicate`, or a rejection reason).
pub fn request(source: Source, endpoint: &str, outcome: &'static str) {
    counter!("hookline_requests_total", "source" => source.as_str(), "endpoint" => endpoint.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// One new (not duplicate) event stored.
pub fn event(source: Source, event_type: &str) {
    counter!("hookline_events_total", "source" => source.as_str(), "type" => event_type.to_owned())
        .increment(1);
}

/// Time from the start of a webhook request to its response.
pub fn intake_latency(elapsed: Duration) {
    histogram!("hookline_intake_duration_seconds").record(elapsed.as_secs_f64());
}

/// Time an intake waited for its event to be committed.
pub fn commit_latency(elapsed: Duration) {
    histogram!("hookline_store_commit_duration_seconds").record(elapsed.as_secs_f64());
}

/// Jobs committed together in one store transaction.
pub fn commit_batch(size: usize) {
    histogram!("hookline_store_commit_batch_size").record(size as f64);
}

/// One delivery attempt: its outcome and how long the handler took.
pub fn attempt(handler: &str, next: NextStep, elapsed: Duration) {
    let outcome = match next {
        NextStep::Delivered => "delivered",
        NextStep::RetryAt(_) => "retry",
        NextStep::Dead => "dead",
    };
    counter!("hookline_delivery_attempts_total", "handler" => handler.to_owned(), "outcome" => outcome)
        .increment(1);
    histogram!("hookline_handler_duration_seconds", "handler" => handler.to_owned())
        .record(elapsed.as_secs_f64());
}

/// Current deliveries by state, as read from the store.
pub fn deliveries(counts: DeliveryCounts) {
    gauge!("hookline_deliveries", "state" => "pending").set(counts.pending as f64);
    gauge!("hookline_deliveries", "state" => "inflight").set(counts.inflight as f64);
    gauge!("hookline_deliveries", "state" => "dead").set(counts.dead as f64);
}
