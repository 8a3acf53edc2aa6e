//! The results: per-target numbers, the delivery run, the targets, the printed table and
//! the JSON file.

use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::disk::DiskFloor;
use crate::load::PhaseStats;
use crate::rss::{self, Memory, Sample};

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Slowest request.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

impl Latency {
    /// The percentiles of a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        Latency {
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

/// What hookline's own metrics say about a run: proof that every 2xx was a stored event, and how
/// well group commit batched.
#[derive(Debug, Clone, Serialize)]
pub struct StoreCounters {
    /// Requests hookline answered `accepted` (stored), warm-up included.
    pub accepted_events: u64,
    /// Transactions the store committed (intake, claims and delivery records).
    pub commit_batches: u64,
    /// Write jobs per transaction, on average.
    pub mean_commit_batch: f64,
    /// Deliveries of the default (log) route completed when the load ended: intake and
    /// delivery share the store's writer, and under full intake load delivery falls behind.
    pub delivered_at_end: u64,
    /// Seconds after the load until every accepted event had been delivered (`None`: not
    /// within the limit).
    pub catch_up_seconds: Option<f64>,
}

/// One server under load: throughput, latency, failures, memory and CPU.
#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    /// `baseline` or `hookline`.
    pub name: String,
    /// Measured requests answered.
    pub requests: u64,
    /// Wall time of the measured phase.
    pub seconds: f64,
    /// Answered requests per second.
    pub requests_per_s: f64,
    /// Latency of the measured requests.
    pub latency: Latency,
    /// Measured requests answered 2xx.
    pub ok: u64,
    /// Measured requests answered otherwise.
    pub non_2xx: u64,
    /// Measured requests that failed (transport error or timeout).
    pub errors: u64,
    /// Measured requests never sent.
    pub unsent: u64,
    /// Warm-up requests answered 2xx.
    pub warmup_ok: u64,
    /// Warm-up requests that did not get a 2xx.
    pub warmup_failed: u64,
    /// The first failure, if any.
    pub first_failure: Option<String>,
    /// Peak resident size of the server process (`VmHWM`), in MB; 0 when not measured
    /// (`--attach`).
    pub peak_rss_mb: f64,
    /// Largest resident size seen by the 50 ms sampler during the measured phase, in MB.
    pub sampled_max_rss_mb: f64,
    /// Resident size right after start, before any load (hookline only), in MB.
    pub idle_rss_mb: Option<f64>,
    /// Server CPU during the measured phase, percent of one core.
    pub server_cpu_percent: f64,
    /// Load generator CPU during the measured phase, percent of one core.
    pub generator_cpu_percent: f64,
    /// hookline's own counters (hookline only).
    pub store: Option<StoreCounters>,
}

/// CPU shares measured during a phase, in percent of one core.
#[derive(Debug, Clone, Copy)]
pub struct CpuShares {
    /// The server process.
    pub server: f64,
    /// The load generator (this process).
    pub generator: f64,
}

impl TargetResult {
    /// Builds a result from the phases' statistics and the server's memory.
    pub fn new(
        name: &str,
        warmup: &PhaseStats,
        measured: &PhaseStats,
        memory: Memory,
        samples: &[Sample],
        cpu: CpuShares,
    ) -> TargetResult {
        TargetResult {
            name: name.to_owned(),
            requests: measured.ok + measured.non_2xx,
            seconds: round(measured.elapsed.as_secs_f64(), 3),
            requests_per_s: round(measured.requests_per_s(), 0),
            latency: Latency::from_histogram(&measured.latency_us),
            ok: measured.ok,
            non_2xx: measured.non_2xx,
            errors: measured.errors,
            unsent: measured.unsent,
            warmup_ok: warmup.ok,
            warmup_failed: warmup.failed(),
            first_failure: measured
                .first_failure
                .clone()
                .or(warmup.first_failure.clone()),
            peak_rss_mb: round(rss::kb_to_mb(memory.hwm_kb), 1),
            sampled_max_rss_mb: round(rss::max_mb(samples), 1),
            idle_rss_mb: None,
            server_cpu_percent: round(cpu.server, 0),
            generator_cpu_percent: round(cpu.generator, 0),
            store: None,
        }
    }

    /// Measured requests that did not get a 2xx.
    pub fn failed(&self) -> u64 {
        self.non_2xx + self.errors + self.unsent
    }
}

/// Resident size over a run, summarised, with the samples.
#[derive(Debug, Clone, Serialize)]
pub struct MemorySeries {
    /// Smallest sample, MB.
    pub min_mb: f64,
    /// Largest sample, MB.
    pub max_mb: f64,
    /// Last sample, MB.
    pub last_mb: f64,
    /// Peak resident size of the process (`VmHWM`), MB.
    pub peak_mb: f64,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl MemorySeries {
    /// Summarises samples and the process's peak.
    pub fn new(samples: Vec<Sample>, peak_kb: u64) -> MemorySeries {
        MemorySeries {
            min_mb: round(rss::min_mb(&samples), 1),
            max_mb: round(rss::max_mb(&samples), 1),
            last_mb: samples.last().map(|s| round(s.rss_mb, 1)).unwrap_or(0.0),
            peak_mb: round(rss::kb_to_mb(peak_kb), 1),
            samples,
        }
    }
}

/// The delivery run: a stored backlog forwarded to a local sink after a restart.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryResult {
    /// Events in the backlog.
    pub events: u64,
    /// Intake rate while filling the backlog (forward route active, sink holding answers).
    pub fill_requests_per_s: f64,
    /// Fill requests that did not get a 2xx.
    pub fill_failed: u64,
    /// The first fill failure, if any.
    pub fill_first_failure: Option<String>,
    /// Events the sink let through while the backlog was filled (held answers released).
    pub delivered_during_fill: u64,
    /// Events delivered after the restart.
    pub drained: u64,
    /// First to last new event at the sink after the restart, seconds.
    pub drain_seconds: f64,
    /// `drained / drain_seconds`.
    pub events_per_s: f64,
    /// From starting hookline to the last event at the sink, seconds.
    pub seconds_from_start: f64,
    /// Requests the sink received in all, duplicates included.
    pub sink_requests: u64,
    /// Every event reached the sink before the time limit.
    pub complete: bool,
    /// hookline's resident size while draining, sampled every 100 ms.
    pub rss: MemorySeries,
}

/// The overload run: more connections than hookline's request limit.
#[derive(Debug, Clone, Serialize)]
pub struct OverloadResult {
    /// hookline's `max_concurrent_requests`.
    pub limit: usize,
    /// Connections sending at once (4 × the limit).
    pub connections: usize,
    /// Requests answered.
    pub requests: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Requests answered 2xx (stored).
    pub accepted: u64,
    /// `accepted / seconds`.
    pub accepted_per_s: f64,
    /// Requests answered `503` with `Retry-After`.
    pub retry_later: u64,
    /// Requests that got anything else: another status, a `503` without `Retry-After`, a
    /// transport error or a timeout, or were never sent. Must be 0.
    pub unexpected: u64,
    /// The first of those, if any.
    pub first_unexpected: Option<String>,
    /// Latency of the 2xx answers.
    pub accepted_latency: Latency,
    /// Latency of the `503` answers: how fast a refusal comes.
    pub retry_later_latency: Latency,
    /// Requests hookline counted `accepted` (stored); must equal `accepted`.
    pub stored_events: u64,
    /// Requests hookline counted `overloaded`.
    pub counted_overloaded: u64,
    /// Resident size before the load, MB.
    pub idle_rss_mb: f64,
    /// Largest resident size the 50 ms sampler saw under load, MB.
    pub sampled_max_rss_mb: f64,
    /// Peak resident size of the process (`VmHWM`), MB.
    pub peak_rss_mb: f64,
}

/// The run's settings, recorded with the results.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    /// Measured requests per target.
    pub requests: usize,
    /// Warm-up requests per target.
    pub warmup: usize,
    /// Concurrent connections.
    pub connections: usize,
    /// Server on core 0, generator on core 1.
    pub pinned: bool,
    /// Cores available.
    pub cpus: usize,
    /// Backlog size of the delivery run (0 = skipped).
    pub delivery_events: usize,
    /// Request limit of the overload run (0 = skipped).
    pub overload_limit: usize,
    /// Baseline-and-hookline rounds (`--rounds`).
    pub rounds: usize,
    /// SQLite durability.
    pub synchronous: &'static str,
    /// hookline's version.
    pub hookline_version: &'static str,
    /// When the run started (UTC).
    pub started_at: String,
}

/// One of the targets and whether it was met.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// What is measured.
    pub name: &'static str,
    /// The bar.
    pub target: &'static str,
    /// What this run measured.
    pub measured: String,
    /// Whether the bar was reached.
    pub met: bool,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Settings.
    pub config: RunConfig,
    /// The minimal axum endpoint.
    pub baseline: Option<TargetResult>,
    /// hookline with durable acknowledgement.
    pub hookline: Option<TargetResult>,
    /// Every round of a `--rounds` run, in order (empty for a single round); `baseline` and
    /// `hookline` are then those of the round with the median ratio.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<Round>,
    /// hookline's requests/s divided by the baseline's.
    pub ratio_requests_per_s: Option<f64>,
    /// Where the durable run's time goes (see [`Report::keep_median_round`] for which runs a
    /// `--rounds` run reports).
    pub breakdown: Option<Breakdown>,
    /// What the disk charges for one commit's writes and fsync, with no database.
    pub disk: Option<DiskFloor>,
    /// The delivery run.
    pub delivery: Option<DeliveryResult>,
    /// The overload run.
    pub overload: Option<OverloadResult>,
    /// The targets.
    pub targets: Vec<TargetCheck>,
    /// Signs that the run was disturbed (another process competing for the CPUs) or limited by
    /// the load generator rather than the server.
    pub warnings: Vec<String>,
}

/// One baseline-then-hookline round of a `--rounds` run.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    /// hookline's requests/s divided by the baseline's in this round.
    pub ratio: f64,
    /// The baseline's result.
    pub baseline: TargetResult,
    /// hookline's result.
    pub hookline: TargetResult,
    /// Where hookline's time went in this round, when it was measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
}

impl Round {
    /// A round and its ratio.
    pub fn new(
        baseline: TargetResult,
        hookline: TargetResult,
        breakdown: Option<Breakdown>,
    ) -> Round {
        let ratio = if baseline.requests_per_s > 0.0 {
            round(hookline.requests_per_s / baseline.requests_per_s, 3)
        } else {
            0.0
        };
        Round {
            ratio,
            baseline,
            hookline,
            breakdown,
        }
    }
}

/// Where a durable event's time goes: the same load against hookline with a store that keeps
/// nothing and against hookline committing without the fsync, beside a baseline and a durable
/// run. Each adds one part to the one before, so the differences of their times per request say
/// what each part costs on the server's core.
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    /// hookline with a store that keeps nothing: the request path alone.
    pub no_store: TargetResult,
    /// hookline with `synchronous=normal`: committed to SQLite, answered before the fsync.
    pub no_fsync: TargetResult,
    /// Time per request (1 / throughput) by part, in microseconds.
    pub us_per_request: Steps,
}

/// Microseconds per request (the inverse of the throughput, with the server on its core), by
/// what each part adds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Steps {
    /// The HTTP exchange: the baseline's time per request.
    pub http: f64,
    /// What hookline's request path adds: verification, decoding, routing, the `log` handler,
    /// metrics and the acknowledgement (no store − baseline).
    pub request_path: f64,
    /// What committing to SQLite adds: the writer thread's SQL, WAL writes and checkpoints,
    /// and handing the event to it and back (no fsync − no store).
    pub commit: f64,
    /// What waiting for the WAL's fsync before the 2xx adds (durable − no fsync).
    pub fsync: f64,
    /// The durable run's time per request: the sum of the parts.
    pub durable: f64,
    /// What 0.5 × the baseline's throughput allows per durable request.
    pub half_baseline_budget: f64,
}

impl Breakdown {
    /// Its two runs, in the order of the parts.
    fn targets(&self) -> [&TargetResult; 2] {
        [&self.no_store, &self.no_fsync]
    }

    /// Prints the time per request by part, and what 0.5 × the baseline would leave.
    fn print(&self) {
        let s = &self.us_per_request;
        let no_store_ratio = s.http / (s.http + s.request_path);
        println!("where a durable request's time goes (µs per request = 1 / throughput):");
        println!("  {:>7.2}  the HTTP exchange (baseline)", s.http);
        println!(
            "  {:>+7.2}  verification, decoding, routing, log handler, answer (no store: {:.3} × baseline)",
            s.request_path, no_store_ratio
        );
        println!(
            "  {:>+7.2}  SQLite commit: writer thread, WAL writes, checkpoints",
            s.commit
        );
        println!("  {:>+7.2}  the WAL fsync before the 2xx", s.fsync);
        println!("  {:>7.2}  hookline (durable)", s.durable);
        println!(
            "  0.5 × baseline allows {:.2} µs per request: {:.2} µs for storage after this request path, against {:.2} µs measured",
            s.half_baseline_budget,
            s.half_baseline_budget - s.http - s.request_path,
            s.commit + s.fsync
        );
    }

    /// The parts, from the four results of one round.
    pub fn new(
        baseline: &TargetResult,
        no_store: TargetResult,
        no_fsync: TargetResult,
        durable: &TargetResult,
    ) -> Breakdown {
        let us = |t: &TargetResult| {
            if t.requests_per_s > 0.0 {
                1e6 / t.requests_per_s
            } else {
                f64::INFINITY
            }
        };
        let (http, request_path) = (us(baseline), us(&no_store));
        let (commit, durable) = (us(&no_fsync), us(durable));
        let us_per_request = Steps {
            http: round(http, 2),
            request_path: round(request_path - http, 2),
            commit: round(commit - request_path, 2),
            fsync: round(durable - commit, 2),
            durable: round(durable, 2),
            half_baseline_budget: round(2.0 * http, 2),
        };
        Breakdown {
            no_store,
            no_fsync,
            us_per_request,
        }
    }
}

impl Report {
    /// Keeps every round and reports the one with the median ratio (the lower middle one for an
    /// even count) as the run's baseline and hookline. The breakdown takes that round's
    /// baseline and hookline and, for each of its own two runs, the one with the median
    /// throughput over the rounds: one disturbed run then does not skew the parts.
    pub fn keep_median_round(&mut self, rounds: Vec<Round>) {
        if let Some(median) = median_index(&rounds, |r| r.ratio) {
            let (baseline, hookline) = (&rounds[median].baseline, &rounds[median].hookline);
            self.baseline = Some(baseline.clone());
            self.hookline = Some(hookline.clone());
            let parts: Option<Vec<&Breakdown>> =
                rounds.iter().map(|r| r.breakdown.as_ref()).collect();
            self.breakdown = parts.and_then(|parts| {
                let median_run = |run: fn(&Breakdown) -> &TargetResult| {
                    median_index(&parts, |b| run(b).requests_per_s).map(|at| run(parts[at]).clone())
                };
                let no_store = median_run(|b| &b.no_store)?;
                let no_fsync = median_run(|b| &b.no_fsync)?;
                Some(Breakdown::new(baseline, no_store, no_fsync, hookline))
            });
        }
        self.rounds = rounds;
    }

    /// Every measured target: those of all rounds, or the single run's.
    fn measured(&self) -> Vec<&TargetResult> {
        if self.rounds.is_empty() {
            let mut targets: Vec<&TargetResult> = [&self.baseline, &self.hookline]
                .into_iter()
                .flatten()
                .collect();
            targets.extend(self.breakdown.iter().flat_map(Breakdown::targets));
            targets
        } else {
            self.rounds
                .iter()
                .flat_map(|r| {
                    [&r.baseline, &r.hookline]
                        .into_iter()
                        .chain(r.breakdown.iter().flat_map(Breakdown::targets))
                })
                .collect()
        }
    }

    /// Fills in the ratio and the target checks.
    pub fn complete(&mut self) {
        self.ratio_requests_per_s = match (&self.baseline, &self.hookline) {
            (Some(b), Some(h)) if b.requests_per_s > 0.0 => {
                Some(round(h.requests_per_s / b.requests_per_s, 3))
            }
            _ => None,
        };
        self.targets = self.checks();
        self.warnings = [&self.baseline, &self.hookline]
            .into_iter()
            .flatten()
            .filter_map(cpu_warning)
            .collect();
    }

    /// The targets against this run's numbers.
    fn checks(&self) -> Vec<TargetCheck> {
        let mut checks = Vec::new();
        if let Some(ratio) = self.ratio_requests_per_s {
            checks.push(check(
                "throughput ratio",
                "≥ 0.5 × baseline",
                ratio,
                ratio >= 0.5,
            ));
        }
        if let Some(h) = &self.hookline {
            let p99_ms = h.latency.p99_us as f64 / 1000.0;
            checks.push(check("p99 latency (ms)", "≤ 5 ms", p99_ms, p99_ms <= 5.0));
            let failed = h.failed() as f64;
            checks.push(check("failed requests", "0", failed, failed == 0.0));
            if h.peak_rss_mb > 0.0 {
                let peak = h.peak_rss_mb;
                checks.push(check("peak RSS (MB)", "≤ 64 MB", peak, peak <= 64.0));
            }
            if let Some(idle) = h.idle_rss_mb {
                checks.push(check("idle RSS (MB)", "≤ 20 MB", idle, idle <= 20.0));
            }
        }
        if let Some(d) = &self.delivery {
            let rate = d.events_per_s;
            let ok = d.complete && rate >= 20_000.0;
            checks.push(check("delivery (events/s)", "≥ 20,000", rate, ok));
            let growth = d.rss.max_mb - d.rss.min_mb;
            checks.push(check(
                "drain RSS growth (MB)",
                "flat (≤ 16 MB)",
                growth,
                growth <= 16.0,
            ));
        }
        if let Some(o) = &self.overload {
            let wrong = o.unexpected as f64;
            checks.push(check(
                "overload: not 2xx/503",
                "0",
                wrong,
                wrong == 0.0 && o.retry_later > 0,
            ));
            let peak = o.peak_rss_mb;
            checks.push(check(
                "overload peak RSS (MB)",
                "≤ 64 MB",
                peak,
                peak <= 64.0,
            ));
        }
        checks
    }

    /// Why the run must exit non-zero: failed requests, an incomplete drain, lost events.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for target in self.measured() {
            if target.failed() > 0 {
                failures.push(format!(
                    "{}: {} measured requests failed (first: {})",
                    target.name,
                    target.failed(),
                    target.first_failure.as_deref().unwrap_or("?")
                ));
            }
        }
        for target in self.measured() {
            failures.extend(lost_events(target));
        }
        if let Some(d) = &self.delivery {
            failures.extend(delivery_failures(d));
        }
        if let Some(o) = &self.overload {
            failures.extend(overload_failures(o));
        }
        failures
    }

    /// Prints the results as a table.
    pub fn print(&self) {
        println!();
        println!(
            "{:<22} {:>9} {:>8} {:>8} {:>9} {:>8} {:>7} {:>9} {:>7}",
            "target",
            "req/s",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "max µs",
            "failed",
            "peak MB",
            "CPU %"
        );
        let parts = self.breakdown.iter().flat_map(Breakdown::targets);
        for target in self.baseline.iter().chain(parts).chain(&self.hookline) {
            print_row(target);
        }
        if let Some(ratio) = self.ratio_requests_per_s {
            println!("ratio hookline/baseline (req/s): {ratio:.3}");
        }
        if let Some(breakdown) = &self.breakdown {
            breakdown.print();
        }
        if let Some(disk) = &self.disk {
            print_disk(disk, self.config.connections);
        }
        if !self.rounds.is_empty() {
            let ratios: Vec<String> = self
                .rounds
                .iter()
                .map(|r| format!("{:.3}", r.ratio))
                .collect();
            println!(
                "ratio per round: {} (the table shows the median round)",
                ratios.join(", ")
            );
        }
        if let Some(h) = &self.hookline {
            print_hookline_extras(h);
        }
        if let Some(d) = &self.delivery {
            print_delivery(d);
        }
        if let Some(o) = &self.overload {
            print_overload(o);
        }
        for warning in &self.warnings {
            println!("WARNING: {warning}");
        }
        println!();
        for check in &self.targets {
            let mark = if check.met { "met" } else { "NOT met" };
            println!(
                "  {:<24} {:>12}  (target {}): {mark}",
                check.name, check.measured, check.target
            );
        }
    }

    /// Writes the report as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// The index of the item with the median `key` (the lower middle one for an even count).
fn median_index<T>(items: &[T], key: impl Fn(&T) -> f64) -> Option<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| key(&items[a]).total_cmp(&key(&items[b])));
    order.get(order.len().saturating_sub(1) / 2).copied()
}

/// Why an overload run fails: answers other than 2xx or `503` + `Retry-After`, no refusal at
/// all (the limit was never reached), or 2xx answers hookline did not count as stored.
fn overload_failures(o: &OverloadResult) -> Vec<String> {
    let mut failures = Vec::new();
    if o.unexpected > 0 {
        failures.push(format!(
            "overload: {} requests got neither a 2xx nor a 503 with Retry-After (first: {})",
            o.unexpected,
            o.first_unexpected.as_deref().unwrap_or("?")
        ));
    }
    if o.retry_later == 0 {
        failures.push(format!(
            "overload: {} connections never exceeded the limit of {}",
            o.connections, o.limit
        ));
    }
    if o.stored_events != o.accepted {
        failures.push(format!(
            "overload: {} requests answered 2xx but hookline counted {} stored",
            o.accepted, o.stored_events
        ));
    }
    failures
}

/// Prints the overload run.
fn print_overload(o: &OverloadResult) {
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "overload: limit {}, {} connections, {} requests in {:.1} s: {} stored ({:.0}/s, p99 {:.1} ms), \
         {} answered 503 + Retry-After (p50 {:.2} ms, p99 {:.2} ms), {} other",
        o.limit,
        o.connections,
        o.requests,
        o.seconds,
        o.accepted,
        o.accepted_per_s,
        ms(o.accepted_latency.p99_us),
        o.retry_later,
        ms(o.retry_later_latency.p50_us),
        ms(o.retry_later_latency.p99_us),
        o.unexpected
    );
    println!(
        "  RSS: idle {:.1} MB, max sampled {:.1} MB, peak {:.1} MB",
        o.idle_rss_mb, o.sampled_max_rss_mb, o.peak_rss_mb
    );
}

/// Below this share of a core, a saturated process was not running all the time.
const BUSY_PERCENT: f64 = 90.0;

/// A warning when the baseline's server and generator were both short of a full core (something
/// else took the CPU), or the generator was busier than the server (it may be the limit).
fn cpu_warning(t: &TargetResult) -> Option<String> {
    if !t.name.starts_with("baseline") {
        return None;
    }
    let (server, generator) = (t.server_cpu_percent, t.generator_cpu_percent);
    if server < BUSY_PERCENT && generator < BUSY_PERCENT {
        Some(format!(
            "{}: server {server:.0}% and generator {generator:.0}% CPU: neither was saturated, \
             another process probably competed for the CPUs; rerun on a quiet machine",
            t.name
        ))
    } else if server < BUSY_PERCENT {
        Some(format!(
            "{}: server {server:.0}% vs generator {generator:.0}% CPU: the load generator may be \
             the limit",
            t.name
        ))
    } else {
        None
    }
}

/// A target check with the measured value formatted.
fn check(name: &'static str, target: &'static str, value: f64, met: bool) -> TargetCheck {
    let measured = if value.fract() == 0.0 || value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    };
    TargetCheck {
        name,
        target,
        measured,
        met,
    }
}

/// hookline answered 2xx to more requests than its counters say it stored.
fn lost_events(h: &TargetResult) -> Option<String> {
    let store = h.store.as_ref()?;
    let answered = h.ok + h.warmup_ok;
    (store.accepted_events < answered).then(|| {
        format!(
            "hookline answered 2xx to {answered} requests but counted only {} accepted events",
            store.accepted_events
        )
    })
}

/// An incomplete drain or failed fill requests.
fn delivery_failures(d: &DeliveryResult) -> Vec<String> {
    let mut failures = Vec::new();
    if d.fill_failed > 0 {
        failures.push(format!(
            "delivery fill: {} requests failed (first: {})",
            d.fill_failed,
            d.fill_first_failure.as_deref().unwrap_or("?")
        ));
    }
    if !d.complete {
        failures.push(format!(
            "delivery: only {} of {} events reached the sink",
            d.delivered_during_fill + d.drained,
            d.events
        ));
    }
    failures
}

/// One line of the table.
fn print_row(t: &TargetResult) {
    println!(
        "{:<22} {:>9.0} {:>8} {:>8} {:>9} {:>8} {:>7} {:>9.1} {:>6.0}% {:>6.0}%",
        t.name,
        t.requests_per_s,
        t.latency.p50_us,
        t.latency.p99_us,
        t.latency.p999_us,
        t.latency.max_us,
        t.failed(),
        t.peak_rss_mb,
        t.server_cpu_percent,
        t.generator_cpu_percent
    );
}

/// hookline's idle memory and store counters.
fn print_hookline_extras(h: &TargetResult) {
    if let Some(idle) = h.idle_rss_mb {
        println!("hookline idle RSS after start: {idle:.1} MB");
    }
    if let Some(store) = &h.store {
        println!(
            "hookline stored {} events (warm-up included) in {} commits, {:.1} writes per commit",
            store.accepted_events, store.commit_batches, store.mean_commit_batch
        );
        let rest = match store.catch_up_seconds {
            _ if store.delivered_at_end >= store.accepted_events => String::new(),
            Some(seconds) => format!("; the rest took {seconds:.1} s more"),
            None => "; the rest did not finish within the limit".to_owned(),
        };
        println!(
            "default-route (log) deliveries done when the load ended: {} of {}{rest}",
            store.delivered_at_end, store.accepted_events
        );
    }
}

/// The delivery run's lines.
fn print_delivery(d: &DeliveryResult) {
    println!(
        "delivery: backlog of {} events filled at {:.0} req/s; after restart {} drained in {:.2} s = {:.0} events/s ({:.2} s from start)",
        d.events, d.fill_requests_per_s, d.drained, d.drain_seconds, d.events_per_s, d.seconds_from_start
    );
    println!(
        "delivery RSS while draining: min {:.1} / max {:.1} / last {:.1} MB, peak {:.1} MB ({} samples)",
        d.rss.min_mb,
        d.rss.max_mb,
        d.rss.last_mb,
        d.rss.peak_mb,
        d.rss.samples.len()
    );
}

/// The disk's costs for one commit, and what the cheapest fsync costs per request.
fn print_disk(d: &DiskFloor, connections: usize) {
    println!(
        "the disk under the data dirs, one commit of {} WAL frames ({} KB), CPU of the writing thread:",
        d.frames,
        d.commit_bytes / 1000
    );
    for (how, cost) in [
        (
            "two pwrites per frame, as SQLite, file growing",
            &d.frame_writes_growing,
        ),
        ("one pwrite, file growing", &d.one_write_growing),
        (
            "one pwrite over blocks written before",
            &d.one_write_overwriting,
        ),
    ] {
        println!(
            "  {how:<48} writes {:>6.1} µs, fdatasync {:>6.1} µs CPU, {:>6.1} µs wall",
            cost.write_cpu_us, cost.fsync_cpu_us, cost.fsync_wall_us
        );
    }
    println!(
        "  the cheapest fsync costs {:.2} µs of CPU per request when one covers {connections} requests",
        d.fsync_cpu_per_request_us(connections)
    );
}

/// Rounds to `digits` decimals, for readable JSON.
pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::new_histogram;

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = new_histogram();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        let latency = Latency::from_histogram(&h);
        assert_eq!(latency.p50_us, 500);
        assert_eq!(latency.p99_us, 990);
        assert_eq!(latency.max_us, 1000);
    }

    fn target(name: &str, rps: f64, failed: u64) -> TargetResult {
        TargetResult {
            name: name.into(),
            requests: 100,
            seconds: 1.0,
            requests_per_s: rps,
            latency: Latency::from_histogram(&new_histogram()),
            ok: 100 - failed,
            non_2xx: failed,
            errors: 0,
            unsent: 0,
            warmup_ok: 0,
            warmup_failed: 0,
            first_failure: None,
            peak_rss_mb: 30.0,
            sampled_max_rss_mb: 30.0,
            idle_rss_mb: Some(10.0),
            server_cpu_percent: 100.0,
            generator_cpu_percent: 80.0,
            store: None,
        }
    }

    fn report(baseline: TargetResult, hookline: TargetResult) -> Report {
        let mut report = Report {
            config: RunConfig {
                requests: 100,
                warmup: 2,
                connections: 4,
                pinned: false,
                cpus: 2,
                delivery_events: 0,
                overload_limit: 0,
                rounds: 1,
                synchronous: "full",
                hookline_version: "test",
                started_at: String::new(),
            },
            baseline: Some(baseline),
            hookline: Some(hookline),
            rounds: Vec::new(),
            ratio_requests_per_s: None,
            breakdown: None,
            disk: None,
            delivery: None,
            overload: None,
            targets: Vec::new(),
            warnings: Vec::new(),
        };
        report.complete();
        report
    }

    fn overload(accepted: u64, retry_later: u64, unexpected: u64, stored: u64) -> OverloadResult {
        let latency = Latency::from_histogram(&new_histogram());
        OverloadResult {
            limit: 8,
            connections: 32,
            requests: accepted + retry_later + unexpected,
            seconds: 1.0,
            accepted,
            accepted_per_s: accepted as f64,
            retry_later,
            unexpected,
            first_unexpected: (unexpected > 0).then(|| "answered 500".to_owned()),
            accepted_latency: latency.clone(),
            retry_later_latency: latency,
            stored_events: stored,
            counted_overloaded: retry_later,
            idle_rss_mb: 10.0,
            sampled_max_rss_mb: 20.0,
            peak_rss_mb: 20.0,
        }
    }

    #[test]
    fn overload_runs_pass_only_with_refusals_and_every_2xx_stored() {
        let with = |o: OverloadResult| {
            let mut r = report(target("baseline", 1000.0, 0), target("hookline", 600.0, 0));
            r.overload = Some(o);
            r.complete();
            r
        };
        let good = with(overload(50, 950, 0, 50));
        assert!(good.failures().is_empty(), "{:?}", good.failures());
        assert!(good.targets.iter().all(|c| c.met), "{:?}", good.targets);
        let odd = with(overload(50, 940, 10, 50)).failures();
        assert!(odd.len() == 1 && odd[0].contains("answered 500"), "{odd:?}");
        let never_full = with(overload(1000, 0, 0, 1000)).failures();
        assert!(never_full[0].contains("never exceeded"), "{never_full:?}");
        let lost = with(overload(50, 950, 0, 49)).failures();
        assert!(lost[0].contains("counted 49 stored"), "{lost:?}");
    }

    #[test]
    fn ratio_and_targets_are_computed() {
        let r = report(target("baseline", 1000.0, 0), target("hookline", 600.0, 0));
        assert_eq!(r.ratio_requests_per_s, Some(0.6));
        assert!(r.targets.iter().all(|c| c.met), "{:?}", r.targets);
        assert!(r.failures().is_empty());
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn rounds_report_the_median_ratio_and_fail_on_any_round() {
        let round = |b: f64, h: f64, failed: u64| {
            Round::new(
                target("baseline", b, 0),
                target("hookline", h, failed),
                None,
            )
        };
        let mut r = report(target("baseline", 1.0, 0), target("hookline", 1.0, 0));
        r.keep_median_round(vec![
            round(1000.0, 300.0, 0),
            round(1000.0, 100.0, 2),
            round(1000.0, 200.0, 0),
        ]);
        r.complete();
        assert_eq!(r.ratio_requests_per_s, Some(0.2), "the median round");
        assert_eq!(r.hookline.as_ref().unwrap().requests_per_s, 200.0);
        assert_eq!(r.rounds.len(), 3);
        let failures = r.failures();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("2 measured requests failed"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["rounds"][1]["ratio"], 0.1);

        let mut even = report(target("baseline", 1.0, 0), target("hookline", 1.0, 0));
        even.keep_median_round(vec![round(1000.0, 400.0, 0), round(1000.0, 300.0, 0)]);
        even.complete();
        assert_eq!(even.ratio_requests_per_s, Some(0.3), "the lower middle one");
    }

    #[test]
    fn the_breakdown_splits_the_time_per_request_into_its_parts() {
        let baseline = target("baseline", 100_000.0, 0);
        let durable = target("hookline (durable)", 25_000.0, 0);
        let no_store = target("hookline (no store)", 50_000.0, 0);
        let breakdown = Breakdown::new(
            &baseline,
            no_store,
            target("hookline (no fsync)", 40_000.0, 0),
            &durable,
        );
        assert_eq!(
            breakdown.us_per_request,
            Steps {
                http: 10.0,
                request_path: 10.0,
                commit: 5.0,
                fsync: 15.0,
                durable: 40.0,
                half_baseline_budget: 20.0,
            }
        );

        // Over rounds, each breakdown run is the one with the median throughput, so that the
        // one disturbed no-store run of the middle round does not skew the parts.
        let mut r = report(baseline.clone(), durable.clone());
        let with_no_store = |rps: f64| {
            let mut b = breakdown.clone();
            b.no_store.requests_per_s = rps;
            Some(b)
        };
        let a_round = |rps: f64| Round::new(baseline.clone(), durable.clone(), with_no_store(rps));
        r.keep_median_round(vec![
            a_round(52_000.0),
            a_round(10_000.0),
            a_round(48_000.0),
        ]);
        r.complete();
        let reported = r.breakdown.as_ref().unwrap();
        assert_eq!(reported.no_store.requests_per_s, 48_000.0);
        assert_eq!(
            reported.us_per_request.request_path,
            round(1e6 / 48_000.0 - 10.0, 2)
        );
        assert_eq!(reported.us_per_request.durable, 40.0);
        let middle = r.rounds[1].breakdown.as_ref().unwrap();
        assert_eq!(
            middle.no_store.requests_per_s, 10_000.0,
            "rounds keep their own"
        );

        let mut failing = breakdown.clone();
        failing.no_fsync.non_2xx = 4;
        let mut r = report(baseline.clone(), durable.clone());
        r.keep_median_round(vec![Round::new(baseline, durable, Some(failing))]);
        r.complete();
        let failures = r.failures();
        assert!(
            failures.len() == 1 && failures[0].contains("no fsync"),
            "a failure in a breakdown run fails the run: {failures:?}"
        );
    }

    #[test]
    fn an_idle_baseline_server_is_flagged() {
        let mut baseline = target("baseline", 1000.0, 0);
        baseline.server_cpu_percent = 50.0;
        baseline.generator_cpu_percent = 45.0;
        let r = report(baseline, target("hookline", 600.0, 0));
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("quiet machine"));
    }

    #[test]
    fn failed_requests_fail_the_run() {
        let r = report(target("baseline", 1000.0, 0), target("hookline", 400.0, 3));
        assert!(
            !r.targets
                .iter()
                .find(|c| c.name == "throughput ratio")
                .unwrap()
                .met
        );
        let failures = r.failures();
        assert_eq!(failures.len(), 1);
        assert!(failures[0].contains("3 measured requests failed"));
    }
}
