//! Prometheus metrics, recorded through the `metrics` facade and rendered at the admin
//! listener's `/metrics`.
//!
//! Every label value is bounded: sources, configured endpoint names, outcome reasons, handler
//! names, and event types (which come only from authenticated requests).

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::envelope::Source;
use crate::shutdown::Shutdown;

/// Buckets for request, commit and handler latencies, in seconds (100 µs to 30 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];
/// Buckets for the number of events per store commit.
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

/// How often [`upkeep`] folds recorded histogram samples into their buckets.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// Folds the histogram samples recorded since the last time into their buckets, every
/// [`UPKEEP_EVERY`], until `shutdown`.
///
/// The recorder keeps every sample until then (`install_recorder` leaves this upkeep to its
/// caller), so without this loop memory grew with every request (~65 bytes each) for as long
/// as nothing scraped `/metrics`.
pub async fn upkeep(handle: PrometheusHandle, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(UPKEEP_EVERY) => handle.run_upkeep(),
        }
    }
}

/// Whether this module's recorder is installed: only its handles may be kept. Before (or
/// without) it, the macros hand out handles that record nothing, or record into another
/// recorder, so nothing is cached then.
fn installed() -> bool {
    matches!(HANDLE.get(), Some(Some(_)))
}

/// Metric handles by label values, made once. The `metrics` macros build a key with owned
/// label strings and look it up in the recorder's registry on every call: ~4 % of the request
/// thread for the four or five metrics each webhook records. Keyed by the one free-form label
/// (endpoint, event type or handler name; bounded, see the module doc) and a small fixed part
/// (source and outcome), so that a lookup allocates nothing.
struct Handles<H> {
    by_name: RwLock<HashMap<String, Vec<(Fixed, H)>>>,
}

/// The fixed labels of a handle: source (if the metric has one) and outcome (or "").
type Fixed = (Option<Source>, &'static str);

impl<H: Clone> Handles<H> {
    fn new() -> Self {
        Handles {
            by_name: RwLock::new(HashMap::new()),
        }
    }

    /// The handle for `name` and `fixed`, made with `make` the first time.
    fn get(&self, name: &str, fixed: Fixed, make: impl FnOnce() -> H) -> H {
        if !installed() {
            return make();
        }
        let found = self.by_name.read().ok().and_then(|map| {
            let handles = map.get(name)?;
            handles
                .iter()
                .find(|(f, _)| *f == fixed)
                .map(|(_, h)| h.clone())
        });
        if let Some(handle) = found {
            return handle;
        }
        let handle = make();
        if let Ok(mut map) = self.by_name.write() {
            let handles = map.entry(name.to_owned()).or_default();
            if !handles.iter().any(|(f, _)| *f == fixed) {
                handles.push((fixed, handle.clone()));
            }
        }
        handle
    }
}

/// A metric without labels: its handle, once the recorder is installed.
fn unlabeled(cell: &'static OnceLock<Histogram>, make: impl FnOnce() -> Histogram) -> Histogram {
    if !installed() {
        return make();
    }
    cell.get_or_init(make).clone()
}

/// One webhook request and what became of it (`accepted`, `duplicate`, or a rejection reason).
pub fn request(source: Source, endpoint: &str, outcome: &'static str) {
    static HANDLES: OnceLock<Handles<Counter>> = OnceLock::new();
    HANDLES
        .get_or_init(Handles::new)
        .get(endpoint, (Some(source), outcome), || {
            counter!("hookline_requests_total", "source" => source.as_str(), "endpoint" => endpoint.to_owned(), "outcome" => outcome)
        })
        .increment(1);
}

/// One new (not duplicate) event stored.
pub fn event(source: Source, event_type: &str) {
    static HANDLES: OnceLock<Handles<Counter>> = OnceLock::new();
    HANDLES
        .get_or_init(Handles::new)
        .get(event_type, (Some(source), ""), || {
            counter!("hookline_events_total", "source" => source.as_str(), "type" => event_type.to_owned())
        })
        .increment(1);
}

/// Time from the start of a webhook request to its response.
pub fn intake_latency(elapsed: Duration) {
    static CELL: OnceLock<Histogram> = OnceLock::new();
    unlabeled(&CELL, || histogram!("hookline_intake_duration_seconds"))
        .record(elapsed.as_secs_f64());
}

/// Time an intake waited for its event to be committed.
pub fn commit_latency(elapsed: Duration) {
    static CELL: OnceLock<Histogram> = OnceLock::new();
    unlabeled(&CELL, || {
        histogram!("hookline_store_commit_duration_seconds")
    })
    .record(elapsed.as_secs_f64());
}

/// Intake's events (new or duplicate) committed together in one store transaction; commits
/// that carry none (delivery bookkeeping) are not recorded.
pub fn commit_batch(size: usize) {
    static CELL: OnceLock<Histogram> = OnceLock::new();
    unlabeled(&CELL, || histogram!("hookline_store_commit_batch_size")).record(size as f64);
}

/// One delivery attempt: its outcome (`delivered`, `retry`, `dead`) and how long the handler took.
pub fn attempt(handler: &str, outcome: &'static str, elapsed: Duration) {
    static COUNTERS: OnceLock<Handles<Counter>> = OnceLock::new();
    static DURATIONS: OnceLock<Handles<Histogram>> = OnceLock::new();
    COUNTERS
        .get_or_init(Handles::new)
        .get(handler, (None, outcome), || {
            counter!("hookline_delivery_attempts_total", "handler" => handler.to_owned(), "outcome" => outcome)
        })
        .increment(1);
    DURATIONS
        .get_or_init(Handles::new)
        .get(
            handler,
            (None, ""),
            || histogram!("hookline_handler_duration_seconds", "handler" => handler.to_owned()),
        )
        .record(elapsed.as_secs_f64());
}

/// A request whose handling panicked (a bug in hookline), answered 500.
pub fn panic() {
    counter!("hookline_panics_total").increment(1);
}

/// One series of `hookline_requests_total`: requests of a source and endpoint with one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCount {
    /// Source name.
    pub source: String,
    /// Endpoint name.
    pub endpoint: String,
    /// `accepted`, `duplicate` or the rejection reason.
    pub outcome: String,
    /// Requests since this process started.
    pub count: u64,
}

/// The webhook requests counted so far by this process, read back from what `/metrics`
/// renders: the inspector's overview shows the refused ones by reason, with the same numbers a
/// scrape gets.
pub fn request_counts(handle: &PrometheusHandle) -> Vec<RequestCount> {
    handle
        .render()
        .lines()
        .filter_map(|line| line.strip_prefix("hookline_requests_total{"))
        .filter_map(parse_request_line)
        .collect()
}

/// `source="…",endpoint="…",outcome="…"} 12` as a [`RequestCount`].
fn parse_request_line(rest: &str) -> Option<RequestCount> {
    let (labels, value) = rest.rsplit_once("} ")?;
    let mut count = RequestCount {
        source: String::new(),
        endpoint: String::new(),
        outcome: String::new(),
        count: value.trim().parse::<f64>().ok()? as u64,
    };
    let mut rest = labels;
    while let Some((name, after)) = rest.split_once("=\"") {
        let (value, after) = label_value(after)?;
        match name.trim_start_matches(',') {
            "source" => count.source = value,
            "endpoint" => count.endpoint = value,
            "outcome" => count.outcome = value,
            _ => {}
        }
        rest = after;
    }
    Some(count)
}

/// A quoted label value up to its closing quote, unescaped, and what follows it.
fn label_value(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// Current deliveries in one state (`pending`, `inflight`, `dead`), as read from the store.
pub fn deliveries(state: &'static str, count: u64) {
    gauge!("hookline_deliveries", "state" => state).set(count as f64);
}

/// Whether intake accepts requests now (1) or answers 503 (0), as `/readyz` says: 0 while the
/// store cannot commit, and during shutdown.
pub fn ready(ready: bool) {
    gauge!("hookline_ready").set(if ready { 1.0 } else { 0.0 });
}

/// How long the oldest delivery still waiting to be done has waited since it was created or
/// replayed; 0 when none waits.
pub fn oldest_waiting(age: Duration) {
    gauge!("hookline_oldest_waiting_delivery_age_seconds").set(age.as_secs_f64());
}

/// An ordered route's keys that a dead letter blocks, and how long the oldest delivery held
/// back by an earlier one of its key has waited (0 when none is); see docs/ordering.md.
pub fn ordered_route(route: &str, blocked_keys: u64, oldest_held_back: Duration) {
    let route = route.to_owned();
    gauge!("hookline_ordered_blocked_keys", "route" => route.clone()).set(blocked_keys as f64);
    gauge!("hookline_ordered_oldest_held_back_age_seconds", "route" => route)
        .set(oldest_held_back.as_secs_f64());
}

/// The store's size as it counts toward `store.max_size`, and that bound (0: none).
pub fn store_size(bytes: u64, max: u64) {
    gauge!("hookline_store_size_bytes").set(bytes as f64);
    gauge!("hookline_store_max_size_bytes").set(max as f64);
}

/// One WAL checkpoint of the store and how long it took: `by` the store's background
/// checkpointer (most of the copying), or by its writer (the last few frames, which lets the
/// WAL start over).
pub fn checkpoint(by: &'static str, elapsed: Duration) {
    histogram!("hookline_store_checkpoint_duration_seconds", "by" => by)
        .record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn request_lines_are_read_back_with_escaped_labels() {
        let line = r#"source="chatbrick",endpoint="a\"b\\c",outcome="bad_signature"} 3"#;
        assert_eq!(
            parse_request_line(line),
            Some(RequestCount {
                source: "chatbrick".into(),
                endpoint: "a\"b\\c".into(),
                outcome: "bad_signature".into(),
                count: 3,
            })
        );
        assert_eq!(parse_request_line("garbage"), None);
    }

    #[test]
    fn cached_handles_keep_counting_per_label_set() {
        let handle = install().expect("this module's recorder");
        let chatbrick = crate::envelope::testing::source("chatbrick", "cb");
        let livedesk = crate::envelope::testing::source("livedesk", "ld");
        for _ in 0..3 {
            request(chatbrick, "cache-test", "accepted");
        }
        request(livedesk, "cache-test", "accepted");
        request(chatbrick, "cache-test", "duplicate");
        for _ in 0..2 {
            attempt("cache-handler", "delivered", Duration::from_millis(1));
        }
        attempt("cache-handler", "dead", Duration::from_millis(1));
        let text = handle.render();
        let expect = [
            (
                r#"hookline_requests_total{source="chatbrick",endpoint="cache-test",outcome="accepted"}"#,
                " 3",
            ),
            (
                r#"hookline_requests_total{source="livedesk",endpoint="cache-test",outcome="accepted"}"#,
                " 1",
            ),
            (
                r#"hookline_requests_total{source="chatbrick",endpoint="cache-test",outcome="duplicate"}"#,
                " 1",
            ),
            (
                r#"hookline_delivery_attempts_total{handler="cache-handler",outcome="delivered"}"#,
                " 2",
            ),
            (
                r#"hookline_delivery_attempts_total{handler="cache-handler",outcome="dead"}"#,
                " 1",
            ),
            (
                r#"hookline_handler_duration_seconds_count{handler="cache-handler"}"#,
                " 3",
            ),
        ];
        for (prefix, value) in expect {
            let found = line(&text, prefix).unwrap_or_else(|| panic!("{prefix} missing:\n{text}"));
            assert!(found.ends_with(value), "{found}");
        }
    }
}
