//! The results of a run, as results.json holds them: what each run measured (`run`), the
//! breakdown, the disk, every round of a `--rounds` run, and the JSON file. Which targets were
//! met is computed in `checks`, the table printed in `print`.

mod run;

use std::path::Path;

use serde::Serialize;

use crate::disk::DiskFloor;
use crate::requests::Ids;
use crate::stats::{median_index, round};

pub use run::{
    CpuShares, DeliveryResult, HandlerLatency, Latency, MemorySeries, OpenLoopResult,
    OrderingResult, OrderingRound, OverloadResult, RecoveryResult, RecoveryRound, StoreCounters,
    TargetResult,
};

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
    /// The kinds of provider ids measured (`--ids`), the first one in `hookline`.
    pub ids: Vec<Ids>,
    /// Percent of the requests that are liveDesk's.
    pub livedesk_percent: u32,
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
    pub name: String,
    /// The bar.
    pub target: &'static str,
    /// What this run measured.
    pub measured: String,
    /// Whether the bar was reached.
    pub met: bool,
}

/// Everything a run produced, as results.json holds it. The runs fill in what they measured;
/// [`Report::complete`] (in `checks`) adds the ratio, the targets and the warnings, and
/// [`Report::print`] (in `print`) shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Settings.
    pub config: RunConfig,
    /// The minimal axum endpoint.
    pub baseline: Option<TargetResult>,
    /// hookline with durable acknowledgement, with the first kind of ids of `--ids`.
    pub hookline: Option<TargetResult>,
    /// The same with random ids, when `--ids` asks for both kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hookline_random_ids: Option<TargetResult>,
    /// hookline durable on PostgreSQL (`--postgres`): one replica, then two, each with every
    /// kind of `--ids`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub postgres: Vec<TargetResult>,
    /// Every round of a `--rounds` run, in order (empty for a single round); `baseline` and
    /// `hookline` are then those of the round with the median ratio.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<Round>,
    /// hookline's requests/s divided by the baseline's.
    pub ratio_requests_per_s: Option<f64>,
    /// hookline's requests/s with random ids divided by those with ordered ids (the median of
    /// the rounds' ratios).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_random_to_ordered: Option<f64>,
    /// Where the durable run's time goes (see [`Report::keep_median_round`] for which runs a
    /// `--rounds` run reports).
    pub breakdown: Option<Breakdown>,
    /// What the disk charges for one commit's writes and fsync, with no database.
    pub disk: Option<DiskFloor>,
    /// The delivery run.
    pub delivery: Option<DeliveryResult>,
    /// The overload run.
    pub overload: Option<OverloadResult>,
    /// The open-loop runs (`--rate`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub open_loop: Vec<OpenLoopResult>,
    /// The crash-recovery run (`--recovery`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryResult>,
    /// The ordering run (`--ordering-events`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering: Option<OrderingResult>,
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
    /// hookline's result with random ids, when both kinds were measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random_ids: Option<TargetResult>,
    /// Its requests/s divided by `hookline`'s (ordered ids) in this round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random_to_ordered: Option<f64>,
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
        let ratio = ratio_of(&hookline, &baseline).unwrap_or(0.0);
        Round {
            ratio,
            baseline,
            hookline,
            random_ids: None,
            random_to_ordered: None,
            breakdown,
        }
    }

    /// The round with hookline's run with random ids beside its run with ordered ones.
    pub fn with_random_ids(mut self, random: Option<TargetResult>) -> Round {
        self.random_to_ordered = random.as_ref().and_then(|r| ratio_of(r, &self.hookline));
        self.random_ids = random;
        self
    }
}

/// `a`'s requests/s divided by `b`'s, rounded; `None` when `b` measured nothing.
pub fn ratio_of(a: &TargetResult, b: &TargetResult) -> Option<f64> {
    (b.requests_per_s > 0.0).then(|| round(a.requests_per_s / b.requests_per_s, 3))
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
    pub fn targets(&self) -> [&TargetResult; 2] {
        [&self.no_store, &self.no_fsync]
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
    /// A report of `config` with nothing measured yet.
    pub fn new(config: RunConfig) -> Report {
        Report {
            config,
            baseline: None,
            hookline: None,
            hookline_random_ids: None,
            postgres: Vec::new(),
            rounds: Vec::new(),
            ratio_requests_per_s: None,
            ratio_random_to_ordered: None,
            breakdown: None,
            disk: None,
            delivery: None,
            overload: None,
            open_loop: Vec::new(),
            recovery: None,
            ordering: None,
            targets: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Keeps every round and reports the one with the median ratio (the lower middle one for an
    /// even count) as the run's baseline and hookline, and the random-ids run of the round with
    /// the median random-to-ordered ratio beside it. The breakdown takes that round's
    /// baseline and hookline and, for each of its own two runs, the one with the median
    /// throughput over the rounds: one disturbed run then does not skew the parts.
    pub fn keep_median_round(&mut self, rounds: Vec<Round>) {
        if let Some(median) = median_index(&rounds, |r| r.ratio) {
            let (baseline, hookline) = (&rounds[median].baseline, &rounds[median].hookline);
            self.baseline = Some(baseline.clone());
            self.hookline = Some(hookline.clone());
            let compared: Vec<&Round> = rounds
                .iter()
                .filter(|r| r.random_to_ordered.is_some())
                .collect();
            if let Some(at) = median_index(&compared, |r| r.random_to_ordered.unwrap_or(0.0)) {
                self.hookline_random_ids = compared[at].random_ids.clone();
                self.ratio_random_to_ordered = compared[at].random_to_ordered;
            }
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

    /// Every measured target: those of all rounds, or the single run's, and the PostgreSQL
    /// runs.
    pub fn measured(&self) -> Vec<&TargetResult> {
        let mut targets = self.intake_measured();
        targets.extend(&self.postgres);
        targets
    }

    /// The intake runs' targets: those of all rounds, or the single run's.
    fn intake_measured(&self) -> Vec<&TargetResult> {
        if self.rounds.is_empty() {
            let mut targets: Vec<&TargetResult> =
                [&self.baseline, &self.hookline, &self.hookline_random_ids]
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
                        .chain(&r.random_ids)
                        .chain(r.breakdown.iter().flat_map(Breakdown::targets))
                })
                .collect()
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

/// Results to test with, every field set, for the tests of this module and of those above it.
#[cfg(test)]
pub mod fixtures {
    use super::*;
    use crate::load::new_histogram;

    /// A server's result: `rps` requests/s, `failed` of its 100 requests not answered 2xx.
    pub fn target(name: &str, rps: f64, failed: u64) -> TargetResult {
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
            disk_kb_per_request: None,
            store: None,
            replicas_peak_rss_mb: Vec::new(),
            database_peak_mb: None,
        }
    }

    /// A single-round report of these two results, before [`Report::complete`].
    pub fn report(baseline: TargetResult, hookline: TargetResult) -> Report {
        let mut report = Report::new(RunConfig {
            requests: 100,
            warmup: 2,
            connections: 4,
            pinned: false,
            cpus: 2,
            delivery_events: 0,
            overload_limit: 0,
            rounds: 1,
            ids: vec![Ids::Ordered, Ids::Random],
            livedesk_percent: 25,
            synchronous: "full",
            hookline_version: "test",
            started_at: String::new(),
        });
        report.baseline = Some(baseline);
        report.hookline = Some(hookline);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{report, target};
    use super::*;

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
    }
}
