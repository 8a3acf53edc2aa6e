//! `hookline-bench`: how many authentic ChatBrick events per second hookline durably
//! acknowledges, how fast it answers and how much memory it needs, next to a minimal axum
//! endpoint on the same machine in the same run; and how fast it forwards a stored backlog.
//!
//! ```text
//! cargo build --release --workspace     # builds target/release/{hookline,hookline-bench}
//! target/release/hookline-bench --pin --requests 200000 --connections 64 --rounds 3 --out bench/results.json
//! ```
//!
//! The servers run as child processes (`hookline serve` configured by environment, and this
//! binary re-executed as `--baseline-server`); with `--pin` they run on core 0 and the load
//! generator on core 1. See docs/performance.md.

mod checks;
mod child;
mod context;
mod delivery;
mod disk;
mod inspector;
mod intake;
mod load;
mod null_store;
mod open_loop;
mod ordering;
mod overload;
mod postgres;
mod print;
mod recovery;
mod requests;
mod results;
mod rss;
mod servers;
mod signals;
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use hookline::livedesk::verify::ChatwootVerifier;
use hookline::signature::{Key, Signer, DEFAULT_TOLERANCE};

use crate::child::ScratchDir;
use crate::context::Context;
use crate::intake::Variant;
use crate::open_loop::Rate;
use crate::requests::{Ids, LoadShape};
use crate::results::{Breakdown, Report, Round, RunConfig};
use crate::signals::interrupted;

/// The same allocator as `hookline`, so that the baseline server measures the same HTTP stack.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The `whsec_` key the benchmark signs with and configures hookline with (not a real secret).
const BENCH_SECRET: &str = "whsec_aG9va2xpbmUtYmVuY2gtbm90LWEtcmVhbC1zZWNyZXQ=";
/// The liveDesk URL token the benchmark configures hookline with (and `--attach` expects).
const BENCH_LIVEDESK_TOKEN: &str = "hookline-bench-livedesk-token";
/// The Chatwoot signing secret the benchmark signs liveDesk requests with (not a real secret).
const BENCH_LIVEDESK_SECRET: &str = "hookline-bench-chatwoot-secret";
/// Core the servers run on with `--pin`.
const SERVER_CORE: usize = 0;
/// Core the load generator (and the delivery sink) runs on with `--pin`.
const GENERATOR_CORE: usize = 1;

/// Benchmark hookline against a minimal axum endpoint, and its forward delivery.
#[derive(Debug, Clone, Parser)]
#[command(name = "hookline-bench", version, about)]
struct Args {
    /// Measured requests per server (the warm-up comes on top).
    #[arg(long, default_value_t = 200_000)]
    requests: usize,
    /// The provider ids hookline is measured with: `ordered` (increasing, as Svix's), `random`
    /// (as Chatwoot's delivery UUIDs), or both, comma-separated: each round then measures
    /// hookline with either, same bodies, and the report gives random ids' throughput as a
    /// share of ordered ones'.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ordered,random"
    )]
    ids: Vec<Ids>,
    /// Percent of the requests that are liveDesk's (`/webhooks/livedesk/<token>`, signed as
    /// Chatwoot signs), spread evenly among the ChatBrick ones.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(0..=100))]
    livedesk_percent: u32,
    /// Open-loop runs, comma-separated rates: requests sent on a fixed schedule whatever the
    /// answers, each latency measured from its due time, for --duration, once per kind of
    /// --ids. A rate is requests per second (5000) or a share of the durable throughput this run
    /// measured with the same ids (50%).
    #[arg(long, value_delimiter = ',')]
    rate: Vec<Rate>,
    /// Seconds each open-loop run lasts.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Crash-recovery rounds: fill hookline's WAL to --recovery-wal-mb, kill it with SIGKILL,
    /// start it again and time its first 2xx; 0 skips them.
    #[arg(long, default_value_t = 0)]
    recovery: usize,
    /// WAL the recovery run fills before the kill, in MiB of frames: 64 is where hookline
    /// starts to checkpoint (older builds: 256).
    #[arg(long, default_value_t = 64.0)]
    recovery_wal_mb: f64,
    /// The hookline that fills the WAL before the kill (default: the one measured), e.g. an
    /// older build, to time the restart of an upgrade.
    #[arg(long, value_name = "PATH")]
    recovery_fill_with: Option<PathBuf>,
    /// Concurrent keep-alive HTTP/1.1 connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Warm-up requests, in percent of --requests, sent first and not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup_percent: f64,
    /// Run the servers on core 0 and the load generator on core 1 (needs 2 cores and taskset).
    #[arg(long)]
    pin: bool,
    /// Size of the stored backlog the delivery run drains; 0 skips the delivery run.
    #[arg(long, default_value_t = 100_000)]
    delivery_events: usize,
    /// Longest the backlog may take to drain, in seconds.
    #[arg(long, default_value_t = 300)]
    delivery_timeout: u64,
    /// Backlog of the ordering run (a route ordered by a body field with 1000 keys and with one,
    /// against the same route unordered, --rounds times in turn; docs/ordering.md); 0 skips it.
    #[arg(long, default_value_t = 0)]
    ordering_events: usize,
    /// hookline's request limit in the overload run, which sends --requests over 4 × as many
    /// connections; 0 skips the overload run.
    #[arg(long, default_value_t = 64)]
    overload_limit: usize,
    /// Measure the baseline and hookline this many times in turn and report the round with the
    /// median ratio (every round is in the JSON): one run's ratio moves with the machine's noise.
    /// The ordering run takes as many rounds (with both skipped, only it does).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Instead of the other runs: fill an inbox with this many events and time the
    /// inspector's pages on it (docs/performance.md, "The inspector on a large inbox").
    #[arg(long, default_value_t = 0)]
    inspector_events: usize,
    /// Also measure hookline durable on PostgreSQL, with one replica and with two, on a scratch
    /// cluster this run starts on the same machine (Debian's `postgresql` server binaries).
    #[arg(long)]
    postgres: bool,
    /// Skip the baseline run.
    #[arg(long)]
    skip_baseline: bool,
    /// Skip hookline's intake run.
    #[arg(long)]
    skip_intake: bool,
    /// Skip the two runs that say where hookline's time goes (a store that keeps nothing, and
    /// SQLite without the fsync).
    #[arg(long)]
    skip_breakdown: bool,
    /// Write the results as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The hookline binary (default: `hookline` next to this executable).
    #[arg(long)]
    hookline: Option<PathBuf>,
    /// Keep the scratch directory (data dirs and server logs) instead of removing it.
    #[arg(long)]
    keep_data: bool,
    /// Only send the load to an already running hookline at this address (configured with
    /// HOOKLINE_CHATBRICK_SECRET=<--secret>), e.g. one started under a profiler.
    #[arg(long, value_name = "ADDR")]
    attach: Option<SocketAddr>,
    /// The `whsec_` key to sign with in --attach mode.
    #[arg(long, default_value = BENCH_SECRET)]
    secret: String,
    /// Internal: serve the baseline endpoint on this port (the benchmark starts itself so).
    #[arg(long, hide = true, value_name = "PORT")]
    baseline_server: Option<u16>,
    /// Internal: serve hookline with a store that keeps nothing, configured by `HOOKLINE_*`
    /// variables (the benchmark starts itself so).
    #[arg(long, hide = true)]
    null_store_server: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(port) = args.baseline_server {
        return servers::run_baseline(port);
    }
    if args.null_store_server {
        return null_store::run_server();
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = args.pin && cpus >= 2;
    if args.pin && !pin {
        eprintln!("hookline-bench: --pin needs 2 cores, this machine has {cpus}; running unpinned");
    }
    if pin {
        if let Err(e) = child::pin_self(GENERATOR_CORE) {
            eprintln!("hookline-bench: {e}");
            return ExitCode::FAILURE;
        }
    }
    match runtime(pin) {
        Ok(runtime) => runtime.block_on(run_interruptible(args, cpus, pin)),
        Err(e) => {
            eprintln!("hookline-bench: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One thread when pinned to one core (no work stealing to pay for), the default otherwise.
fn runtime(pin: bool) -> std::io::Result<tokio::runtime::Runtime> {
    if pin {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
}

/// Runs the benchmark; Ctrl-C or SIGTERM drops everything, which kills the child processes.
async fn run_interruptible(args: Args, cpus: usize, pin: bool) -> ExitCode {
    if args.inspector_events > 0 {
        return match inspector_run(&args, pin).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hookline-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let outcome = tokio::select! {
        outcome = run(args, cpus, pin) => outcome,
        signal = interrupted() => Err(format!("interrupted by {signal}")),
    };
    match outcome {
        Ok(report) => exit_code(&report),
        Err(e) => {
            eprintln!("hookline-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The inspector run alone: its table, and its JSON at `--out`.
async fn inspector_run(args: &Args, pin: bool) -> Result<(), String> {
    let ctx = context(args, pin)?;
    progress(&format!(
        "inspector: filling an inbox with {} events",
        args.inspector_events
    ));
    let result = tokio::select! {
        result = inspector::run(&ctx, args.inspector_events) => result?,
        signal = interrupted() => return Err(format!("interrupted by {signal}")),
    };
    inspector::print(&result);
    if let Some(path) = &args.out {
        let json = serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("\nresults written to {}", path.display());
    }
    Ok(())
}

/// Failure when any measured request failed or the backlog did not drain.
fn exit_code(report: &Report) -> ExitCode {
    let failures = report.failures();
    for failure in &failures {
        eprintln!("hookline-bench: FAILED: {failure}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The runs the arguments ask for, then the table and the JSON.
async fn run(args: Args, cpus: usize, pin: bool) -> Result<Report, String> {
    let ctx = context(&args, pin)?;
    let mut report = Report::new(run_config(&args, &ctx, cpus, pin));
    if let Some(addr) = args.attach {
        progress(&format!("attached: {} requests to {addr}", ctx.requests));
        report.hookline = Some(intake::attached(&ctx, addr, ctx.ids[0]).await?);
        return finish(report, args.out.as_deref());
    }
    intake_rounds(&args, &ctx, &mut report).await?;
    if args.postgres {
        report.postgres = postgres::run(&ctx).await?;
    }
    open_loop_runs(&args, &ctx, &mut report).await?;
    if args.recovery > 0 {
        progress(&format!(
            "recovery: {} kills with {} MiB of WAL, each timed to the first 2xx after the restart",
            args.recovery, args.recovery_wal_mb
        ));
        let fill_with = args.recovery_fill_with.as_deref();
        let wal_mb = args.recovery_wal_mb;
        report.recovery = Some(recovery::run(&ctx, wal_mb, args.recovery, fill_with).await?);
    }
    if args.overload_limit > 0 {
        progress(&format!(
            "overload: hookline limited to {} requests at once, {} connections",
            args.overload_limit,
            args.overload_limit * overload::OVERSUBSCRIPTION
        ));
        report.overload = Some(overload::run(&ctx, args.overload_limit).await?);
    }
    if args.delivery_events > 0 {
        progress(&format!(
            "delivery: filling a backlog of {} events, then draining it to a local sink",
            args.delivery_events
        ));
        let limit = Duration::from_secs(args.delivery_timeout);
        report.delivery = Some(delivery::run(&ctx, args.delivery_events, limit).await?);
    }
    if args.ordering_events > 0 {
        progress("ordering: ordered and unordered routes draining a stored backlog, in turn");
        report.ordering = Some(ordering::run(&ctx, args.ordering_events, args.rounds).await?);
    }
    finish(report, args.out.as_deref())
}

/// The baseline and hookline runs, `--rounds` times in turn (each hookline run on a fresh
/// data dir, removed afterwards unless `--keep-data`), with the breakdown's two runs between
/// them and the disk's costs first, unless skipped.
async fn intake_rounds(args: &Args, ctx: &Context, report: &mut Report) -> Result<(), String> {
    let breakdown = !(args.skip_breakdown || args.skip_baseline || args.skip_intake);
    if breakdown {
        progress("the disk: one commit's writes and fsync, with no database");
        let frames = disk::frames_per_commit(ctx.connections);
        report.disk = Some(disk::DiskFloor::measure(&ctx.scratch.path, frames)?);
    }
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        let of = format!("round {} of {}: ", round + 1, args.rounds);
        let of = if args.rounds > 1 { of.as_str() } else { "" };
        if !args.skip_baseline {
            progress(&format!(
                "{of}baseline: minimal axum endpoint answering 204"
            ));
            report.baseline = Some(intake::baseline(ctx, round).await?);
        }
        let parts = if breakdown {
            progress(&format!(
                "{of}hookline with a store that keeps nothing, then with synchronous=normal"
            ));
            let ids = ctx.ids[0];
            let no_store =
                intake::hookline(ctx, Variant::NoStore, ids, round, args.keep_data).await?;
            Some((
                no_store,
                intake::hookline(ctx, Variant::NoFsync, ids, round, args.keep_data).await?,
            ))
        } else {
            None
        };
        if !args.skip_intake {
            let durable = |ids| intake::hookline(ctx, Variant::Durable, ids, round, args.keep_data);
            for &ids in &ctx.ids {
                progress(&format!(
                    "{of}hookline: durable acknowledgement (synchronous=FULL, default routes), {} ids",
                    ids.name()
                ));
                let result = Some(durable(ids).await?);
                if ids == ctx.ids[0] {
                    report.hookline = result;
                } else {
                    report.hookline_random_ids = result;
                }
            }
        }
        if let (Some(baseline), Some(hookline)) = (&report.baseline, &report.hookline) {
            let breakdown = parts
                .map(|(no_store, no_fsync)| Breakdown::new(baseline, no_store, no_fsync, hookline));
            report.breakdown = breakdown.clone();
            let round = Round::new(baseline.clone(), hookline.clone(), breakdown);
            rounds.push(round.with_random_ids(report.hookline_random_ids.clone()));
        }
    }
    if args.rounds > 1 {
        report.keep_median_round(rounds);
    }
    Ok(())
}

/// The open-loop runs `--rate` asks for, for every kind of ids, each at its rate (a share of
/// the durable throughput the rounds measured with the same ids, or requests per second).
async fn open_loop_runs(args: &Args, ctx: &Context, report: &mut Report) -> Result<(), String> {
    let duration = Duration::from_secs(args.duration.max(1));
    for &ids in &ctx.ids {
        let measured = if ids == ctx.ids[0] {
            &report.hookline
        } else {
            &report.hookline_random_ids
        };
        let saturation = measured.as_ref().map(|h| h.requests_per_s);
        for &rate in &args.rate {
            progress(&format!(
                "open loop: hookline at {rate} ({:.0} requests/s), {} ids, for {} s",
                rate.per_second(saturation)?,
                ids.name(),
                duration.as_secs()
            ));
            let run = open_loop::run(ctx, ids, rate, saturation, duration).await?;
            report.open_loop.push(run);
        }
    }
    Ok(())
}

/// Completes, prints and writes the report.
fn finish(mut report: Report, out: Option<&std::path::Path>) -> Result<Report, String> {
    report.complete();
    report.print();
    if let Some(path) = out {
        report.write(path)?;
        println!("\nresults written to {}", path.display());
    }
    Ok(report)
}

/// Checks the arguments and gathers what the runs share.
fn context(args: &Args, pin: bool) -> Result<Context, String> {
    if args.connections == 0 || args.requests == 0 || args.rounds == 0 {
        return Err("--connections, --requests and --rounds must be at least 1".into());
    }
    if args.rounds > 1 && args.skip_baseline != args.skip_intake {
        return Err("--rounds compares the baseline with hookline: skip both or neither".into());
    }
    if !(0.0..=50.0).contains(&args.warmup_percent) {
        return Err("--warmup-percent must be between 0 and 50".into());
    }
    let secret = if args.attach.is_some() {
        args.secret.clone()
    } else {
        BENCH_SECRET.to_owned()
    };
    let key: Key = secret.parse().map_err(|e| format!("signing key: {e}"))?;
    let signer = Signer::new(key).map_err(|e| format!("signing key: {e}"))?;
    let mut ids = args.ids.clone();
    ids.sort_by_key(|ids| *ids != Ids::Ordered);
    ids.dedup();
    if ids.is_empty() {
        return Err("--ids needs ordered, random or both".into());
    }
    if args.recovery_wal_mb.is_nan() || args.recovery_wal_mb <= 0.0 {
        return Err("--recovery-wal-mb must be above 0".into());
    }
    let hookline = match (&args.hookline, args.attach) {
        (Some(path), _) => path.clone(),
        (None, Some(_)) => PathBuf::new(),
        (None, None) => child::sibling_hookline()?,
    };
    Ok(Context {
        hookline,
        server_core: pin.then_some(SERVER_CORE),
        connections: args.connections,
        requests: args.requests,
        warmup: (args.requests as f64 * args.warmup_percent / 100.0).round() as usize,
        secret,
        livedesk_secret: BENCH_LIVEDESK_SECRET.to_owned(),
        shape: LoadShape {
            livedesk_percent: args.livedesk_percent,
            livedesk_token: BENCH_LIVEDESK_TOKEN.to_owned(),
            chatwoot: ChatwootVerifier::new(BENCH_LIVEDESK_SECRET.to_owned(), DEFAULT_TOLERANCE),
            signer,
        },
        ids,
        scratch: ScratchDir::new(args.keep_data)?,
        nonce: nonce(),
    })
}

/// The settings recorded with the results.
fn run_config(args: &Args, ctx: &Context, cpus: usize, pin: bool) -> RunConfig {
    RunConfig {
        requests: ctx.requests,
        warmup: ctx.warmup,
        connections: ctx.connections,
        pinned: pin,
        cpus,
        delivery_events: args.delivery_events,
        overload_limit: args.overload_limit,
        rounds: args.rounds,
        ids: ctx.ids.clone(),
        livedesk_percent: args.livedesk_percent,
        synchronous: "full",
        hookline_version: env!("CARGO_PKG_VERSION"),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

/// A short string unique to this run, for message ids.
fn nonce() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    )
}

/// One progress line on stderr.
pub(crate) fn progress(message: &str) {
    eprintln!("hookline-bench: {message}");
}
