//! The human output: a report as the table and the lines the benchmark prints on stdout.

use crate::disk::DiskFloor;
use crate::requests::Ids;
use crate::results::{
    Breakdown, DeliveryResult, HandlerLatency, OpenLoopResult, OrderingResult, OverloadResult,
    RecoveryResult, Report, TargetResult,
};

impl Report {
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
        let durable = self.hookline.iter().chain(&self.hookline_random_ids);
        for target in self.baseline.iter().chain(parts).chain(durable) {
            print_row(target);
        }
        for target in &self.postgres {
            print_row(target);
        }
        self.postgres.iter().for_each(print_postgres_memory);
        print_postgres_ratios(self);
        if let Some(ratio) = self.ratio_requests_per_s {
            println!("ratio hookline/baseline (req/s): {ratio:.3}");
        }
        if let Some(ratio) = self.ratio_random_to_ordered {
            let rounds: Vec<String> = self
                .rounds
                .iter()
                .filter_map(|r| r.random_to_ordered.map(|x| format!("{x:.3}")))
                .collect();
            let per_round = if rounds.len() > 1 {
                format!(" (rounds: {}; the median is shown)", rounds.join(", "))
            } else {
                String::new()
            };
            println!("ratio random ids/ordered ids (req/s): {ratio:.3}{per_round}");
        }
        print_disk_per_request(self);
        if let Some(breakdown) = &self.breakdown {
            print_breakdown(breakdown);
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
        if let Some(o) = &self.ordering {
            print_ordering(o);
        }
        if !self.open_loop.is_empty() {
            print_open_loop(&self.open_loop);
        }
        if let Some(r) = &self.recovery {
            print_recovery(r);
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
}

/// Prints the time per request by part, and what 0.5 × the baseline would leave.
fn print_breakdown(b: &Breakdown) {
    let s = &b.us_per_request;
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

/// What a PostgreSQL run's processes held at their peak: each replica (the table shows the
/// largest) and the database server.
fn print_postgres_memory(t: &TargetResult) {
    let mut parts = Vec::new();
    if !t.replicas_peak_rss_mb.is_empty() {
        let each: Vec<String> = t
            .replicas_peak_rss_mb
            .iter()
            .map(|mb| format!("{mb:.1}"))
            .collect();
        parts.push(format!("replicas' peak RSS {} MB", each.join(" / ")));
    }
    if let Some(mb) = t.database_peak_mb {
        parts.push(format!(
            "PostgreSQL server {mb:.1} MB (PSS of all its processes)"
        ));
    }
    if !parts.is_empty() {
        println!("{}: {}", t.name, parts.join("; "));
    }
}

/// PostgreSQL's throughput as a share of SQLite's durable one (the target: ≥ 0.5 at 64
/// connections), and random ids' as a share of ordered ones' on PostgreSQL.
fn print_postgres_ratios(report: &Report) {
    let by_name = |name: &str| report.postgres.iter().find(|t| t.name == name);
    let ratio = |a: &TargetResult, b: &TargetResult| a.requests_per_s / b.requests_per_s.max(1.0);
    for replicas in [1, 2] {
        let ordered = by_name(&crate::postgres::name(replicas, Ids::Ordered));
        let random = by_name(&crate::postgres::name(replicas, Ids::Random));
        if let (Some(pg), Some(sqlite)) = (ordered, &report.hookline) {
            println!(
                "ratio PostgreSQL ({replicas} replica(s))/SQLite durable (req/s): {:.3}",
                ratio(pg, sqlite)
            );
        }
        if let (Some(random), Some(ordered)) = (random, ordered) {
            println!(
                "ratio random ids/ordered ids on PostgreSQL ({replicas} replica(s)): {:.3}",
                ratio(random, ordered)
            );
        }
    }
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

/// The ordering run's line: the medians over its rounds.
fn print_ordering(o: &OrderingResult) {
    println!(
        "ordering: backlog of {} events, ordered (1000 keys) / unordered = {:.2} (median of {} rounds); one hot key drained {:.0} events/s with {} queued",
        o.events,
        o.ratio_ordered_to_unordered,
        o.rounds.len(),
        o.hot_key_events_per_s,
        o.hot_key_events
    );
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

/// What each durable run wrote to storage per request, when measured.
fn print_disk_per_request(report: &Report) {
    let runs = report.hookline.iter().chain(&report.hookline_random_ids);
    for t in runs {
        if let Some(kb) = t.disk_kb_per_request {
            println!("{}: {kb:.2} KiB written to storage per request", t.name);
        }
    }
}

/// The open-loop runs: latency from the due time, what was sent and failed.
fn print_open_loop(runs: &[OpenLoopResult]) {
    let ms = |us: u64| us as f64 / 1000.0;
    println!("open loop (latency from each request's due time):");
    println!(
        "  {:<46} {:>8} {:>8} {:>7} {:>7} {:>8} {:>8} {:>6} {:>6} {:>5}",
        "run",
        "sched/s",
        "answ/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "failed",
        "CPU %",
        "ckpts"
    );
    for run in runs {
        let checkpoints = run
            .store
            .as_ref()
            .map_or("?".to_owned(), |s| s.checkpoints.to_string());
        println!(
            "  {:<46} {:>8.0} {:>8.0} {:>7.2} {:>7.2} {:>8.2} {:>8.2} {:>6} {:>5.0}% {:>5}",
            run.name,
            run.target_per_s,
            run.answered_per_s,
            ms(run.latency.p50_us),
            ms(run.latency.p99_us),
            ms(run.latency.p999_us),
            ms(run.latency.max_us),
            run.failed(),
            run.server_cpu_percent,
            checkpoints
        );
        println!(
            "    send lag (due → sent): p99 {:.2} ms, max {:.2} ms; {} KiB to storage per request",
            ms(run.send_lag.p99_us),
            ms(run.send_lag.max_us),
            run.disk_kb_per_request
                .map_or("?".to_owned(), |kb| format!("{kb:.2}"))
        );
        if let Some(handler) = &run.handler {
            print_handler_latency(handler);
        }
    }
}

/// hookline's own view of an open-loop run: its handler's histogram.
fn print_handler_latency(handler: &HandlerLatency) {
    let bound =
        |ms: Option<f64>| ms.map_or("> the largest bucket".to_owned(), |ms| format!("≤ {ms} ms"));
    println!(
        "    hookline's handler (its own histogram): {:.2} % within 5 ms; p99 {}, p99.9 {}",
        handler.within_5ms_percent,
        bound(handler.p99_at_most_ms),
        bound(handler.p999_at_most_ms)
    );
}

/// The crash-recovery rounds.
fn print_recovery(r: &RecoveryResult) {
    println!(
        "recovery after SIGKILL with {:.0} MiB of WAL: first 2xx after {:.0} ms (median of {})",
        r.wal_target_mb,
        r.median_first_2xx_ms,
        r.rounds.len()
    );
    for round in &r.rounds {
        println!(
            "  {} events acknowledged, killed with WAL {:.1} MiB, db {:.1} MiB: first 2xx {:.0} ms, /readyz {:.0} ms, db {:.1} MiB then",
            round.acknowledged,
            round.wal_mb_at_kill,
            round.db_mb_at_kill,
            round.first_2xx_ms,
            round.ready_ms,
            round.db_mb_at_first_2xx
        );
    }
}
