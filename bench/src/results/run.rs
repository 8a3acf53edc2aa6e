//! What one run measured: a server under load (throughput, latency, failures, memory, CPU,
//! hookline's own counters), the delivery run and the overload run.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::load::PhaseStats;
use crate::requests::Ids;
use crate::rss::{self, Memory, Sample};
use crate::stats::round;

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

/// hookline's own view of an open-loop run's latency: its `hookline_intake_duration_seconds`
/// histogram, from the moment its handler starts on a request to its answer. Beside the
/// latency the generator measures, it tells hookline's share of a tail from the rest (the
/// generator, the wait for the server's request thread, the network stack). Its buckets are
/// coarse, so percentiles are given as the bucket bound they fall under.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HandlerLatency {
    /// Intakes the histogram counted.
    pub intakes: u64,
    /// Share of them answered within 5 ms, percent.
    pub within_5ms_percent: f64,
    /// The smallest bucket bound that 99 % of intakes fall under, ms.
    pub p99_at_most_ms: Option<f64>,
    /// The same for 99.9 %, ms.
    pub p999_at_most_ms: Option<f64>,
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
    /// WAL checkpoints the store completed, each letting the WAL start over (0 for a hookline
    /// that does not count them).
    pub checkpoints: u64,
    /// Seconds its checkpoints took in all, on the checkpointer thread and the writer.
    pub checkpoint_seconds: f64,
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
    /// What the server wrote to storage during the measured phase, per request, in KiB (its
    /// `/proc` `write_bytes`: WAL frames and checkpoints); `None` when not measured.
    pub disk_kb_per_request: Option<f64>,
    /// hookline's own counters (hookline only).
    pub store: Option<StoreCounters>,
    /// With several servers (PostgreSQL replicas), each one's peak resident size, in MB;
    /// `peak_rss_mb` is the largest of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas_peak_rss_mb: Vec<f64>,
    /// The database server the run used (PostgreSQL): the largest memory of all its processes
    /// seen during the measured phase, in MB, counted by proportional share
    /// (`rss::tree_pss_kb`, so that shared buffers count once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_peak_mb: Option<f64>,
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
            disk_kb_per_request: None,
            store: None,
            replicas_peak_rss_mb: Vec::new(),
            database_peak_mb: None,
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

/// The ordering run (docs/ordering.md): a stored backlog drained through a route ordered by a
/// body field with 1000 keys and with one, next to the same route unordered, in turn.
#[derive(Debug, Clone, Serialize)]
pub struct OrderingResult {
    /// Events in the backlog of the unordered route and of the ordered one with 1000 keys.
    pub events: u64,
    /// Events in the backlog of the single hot key (a tenth: it is one at a time).
    pub hot_key_events: u64,
    /// Each round's drain rates.
    pub rounds: Vec<OrderingRound>,
    /// The median over rounds of the ordered route's rate divided by the unordered one's.
    pub ratio_ordered_to_unordered: f64,
    /// The median drain rate of the single hot key, events/s.
    pub hot_key_events_per_s: f64,
}

/// One round of the ordering run: drain rates in events/s.
#[derive(Debug, Clone, Serialize)]
pub struct OrderingRound {
    /// The route unordered.
    pub unordered: f64,
    /// The route ordered, 1000 keys.
    pub ordered: f64,
    /// The route ordered, one key.
    pub hot_key: f64,
    /// `ordered / unordered`.
    pub ratio: f64,
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

/// An open-loop run: hookline (durable) sent requests on a fixed schedule whatever its answers,
/// each latency measured from the request's due time.
#[derive(Debug, Clone, Serialize)]
pub struct OpenLoopResult {
    /// What ran, for the table.
    pub name: String,
    /// The kind of provider ids.
    pub ids: Ids,
    /// The rate as asked (`50%`, `5000/s`).
    pub rate: String,
    /// Requests per second scheduled.
    pub target_per_s: f64,
    /// The closed-loop durable throughput with the same ids in this run, when the rate is a
    /// share of it.
    pub saturation_per_s: Option<f64>,
    /// The rate as a share of that throughput, when it was measured: from the rate before
    /// `target_per_s` was rounded, so that `50%` of an odd throughput is 0.5, not a hair above.
    pub share_of_saturation: Option<f64>,
    /// From the first due time to the last answer, seconds.
    pub seconds: f64,
    /// Requests scheduled.
    pub scheduled: u64,
    /// Answers per second.
    pub answered_per_s: f64,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests answered otherwise.
    pub non_2xx: u64,
    /// Requests that failed at the transport level or timed out.
    pub errors: u64,
    /// Requests never sent.
    pub unsent: u64,
    /// The first failure, if any.
    pub first_failure: Option<String>,
    /// Latency of the 2xx answers from their requests' due times.
    pub latency: Latency,
    /// From due time to the start of sending: the generator's lateness plus the wait for a free
    /// connection.
    pub send_lag: Latency,
    /// Server CPU, percent of one core.
    pub server_cpu_percent: f64,
    /// Peak resident size of the server (`VmHWM`), MB.
    pub peak_rss_mb: f64,
    /// Largest resident size the 50 ms sampler saw, MB.
    pub sampled_max_rss_mb: f64,
    /// What the server wrote to storage per scheduled request, KiB.
    pub disk_kb_per_request: Option<f64>,
    /// hookline's own counters, checkpoints included.
    pub store: Option<StoreCounters>,
    /// hookline's own histogram of its handler's latency (`None`: not readable).
    pub handler: Option<HandlerLatency>,
}

impl OpenLoopResult {
    /// Scheduled requests that did not get a 2xx.
    pub fn failed(&self) -> u64 {
        self.non_2xx + self.errors + self.unsent
    }
}

/// The crash-recovery run: hookline killed (`SIGKILL`) once its WAL held a given size, then
/// started again on the same data dir.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryResult {
    /// WAL size the fill waited for before the kill, MiB.
    pub wal_target_mb: f64,
    /// Each kill and restart.
    pub rounds: Vec<RecoveryRound>,
    /// The median of the rounds' `first_2xx_ms`.
    pub median_first_2xx_ms: f64,
}

/// One kill and restart.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryRound {
    /// Events acknowledged before the kill.
    pub acknowledged: u64,
    /// The `-wal` file's size at the kill, MiB.
    pub wal_mb_at_kill: f64,
    /// The database file's size at the kill, MiB.
    pub db_mb_at_kill: f64,
    /// From starting the process again to its first 2xx answer to a new event, ms.
    pub first_2xx_ms: f64,
    /// From starting the process again to `/readyz` answering 200, ms.
    pub ready_ms: f64,
    /// The database file's size right after the first 2xx, MiB: it grows when the start-up
    /// copies the WAL into it before answering.
    pub db_mb_at_first_2xx: f64,
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
}
