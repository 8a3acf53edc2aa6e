//! The intake runs: the same pre-signed load against the baseline and against hookline, each in
//! its own child process, with memory and CPU measured on the side.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::child::{self, ChildProc, Spawn};
use crate::context::Context;
use crate::load::{self, Conn, PhaseStats};
use crate::requests::{Ids, Prepared};
use crate::results::{CpuShares, HandlerLatency, StoreCounters, TargetResult};
use crate::rss::{self, CpuMeter, Memory, Sampler};
use crate::stats::round;

/// Time a server has to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a server has to stop after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between hookline's readiness and the idle memory reading, so that start-up settles.
pub const IDLE_SETTLE: Duration = Duration::from_millis(300);
/// Longest wait for the default route's deliveries to catch up after the load.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(300);
/// How often delivery progress is read from `/metrics` while catching up.
const CATCH_UP_POLL: Duration = Duration::from_millis(100);
/// Resident-size sampling interval under load.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// Runs the load against the baseline server (`nth` round: names its log and message ids).
pub async fn baseline(ctx: &Context, nth: usize) -> Result<TargetResult, String> {
    let addr = child::free_port()?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate myself: {e}"))?;
    let mut server = ChildProc::spawn(Spawn {
        name: "baseline",
        program: &exe,
        args: &["--baseline-server".into(), addr.port().to_string()],
        env: &[],
        core: ctx.server_core,
        log: ctx.scratch.path.join(format!("baseline-{nth}.log")),
    })?;
    server.wait_ready(addr, "/readyz", READY_TIMEOUT).await?;
    let requests = Arc::new(ctx.prepare(&format!("base{nth}"), Ids::Ordered));
    let result = measure(ctx, "baseline (axum, 204)", &mut server, addr, &requests).await?;
    server.terminate(STOP_TIMEOUT).await?;
    Ok(result)
}

/// The hookline configurations an intake round measures. Each adds one part of storage to the
/// one before, so the differences between their throughputs say what each part costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// A store that keeps nothing (`--null-store-server`): the request path alone.
    NoStore,
    /// SQLite with `synchronous=normal`: committed, answered without waiting for an fsync.
    NoFsync,
    /// SQLite with `synchronous=full`: answered after the WAL is fsynced. The targets
    /// are about this one.
    Durable,
}

impl Variant {
    /// The name in the table and the JSON; runs with random ids say so.
    pub fn name(self, ids: Ids) -> String {
        let name = match self {
            Variant::NoStore => "hookline (no store)",
            Variant::NoFsync => "hookline (no fsync)",
            Variant::Durable => "hookline (durable)",
        };
        match ids {
            Ids::Ordered => name.to_owned(),
            Ids::Random => name.replace(')', ", random ids)"),
        }
    }

    /// Short label for data dirs, logs and message ids.
    fn label(self) -> &'static str {
        match self {
            Variant::NoStore => "nostore",
            Variant::NoFsync => "nofsync",
            Variant::Durable => "intake",
        }
    }

    /// `HOOKLINE_SYNCHRONOUS` for it.
    fn synchronous(self) -> &'static str {
        match self {
            Variant::NoFsync => "normal",
            Variant::NoStore | Variant::Durable => "full",
        }
    }
}

/// Runs the load with `ids` against hookline in `variant`, default routes, a fresh data dir
/// (`nth` round: names it, its log and the message ids; the data dir is removed afterwards
/// unless `keep_data`).
pub async fn hookline(
    ctx: &Context,
    variant: Variant,
    ids: Ids,
    nth: usize,
    keep_data: bool,
) -> Result<TargetResult, String> {
    let label = format!("{}-{}-{nth}", variant.label(), ids.name());
    let data = ctx.scratch.path.join(&label);
    let log = format!("hookline-{label}.log");
    let mut hookline = Hookline::start(ctx, variant, &data, None, None, &log).await?;
    tokio::time::sleep(IDLE_SETTLE).await;
    let idle = rss::memory(hookline.child.pid()).ok_or("hookline exited before the load")?;
    let requests = Arc::new(ctx.prepare(&label, ids));
    let name = variant.name(ids);
    let mut result = measure(ctx, &name, &mut hookline.child, hookline.public, &requests).await?;
    result.idle_rss_mb = Some(round(rss::kb_to_mb(idle.rss_kb), 1));
    result.store = store_counters(hookline.admin).await;
    if let Some(store) = result.store.as_mut() {
        store.catch_up_seconds = catch_up(hookline.admin, store.accepted_events).await;
    }
    hookline.child.terminate(STOP_TIMEOUT).await?;
    if !keep_data {
        let _ = std::fs::remove_dir_all(&data);
    }
    Ok(result)
}

/// A running hookline and its addresses.
#[derive(Debug)]
pub struct Hookline {
    /// The process.
    pub child: ChildProc,
    /// Public listener (webhooks, `/readyz`).
    pub public: SocketAddr,
    /// Admin listener (`/metrics`).
    pub admin: SocketAddr,
}

impl Hookline {
    /// Starts hookline in `variant` (`hookline serve`, or this binary's null-store server)
    /// configured by environment only, and waits until it is ready. With `forward`, every event
    /// is also forwarded to `http://<forward>/in`; `max_concurrent` sets its request limit
    /// (default: well above the connection count).
    pub async fn start(
        ctx: &Context,
        variant: Variant,
        data_dir: &Path,
        forward: Option<SocketAddr>,
        max_concurrent: Option<usize>,
        log_name: &str,
    ) -> Result<Hookline, String> {
        let mut hookline = Hookline::spawn(
            ctx,
            variant,
            data_dir,
            forward,
            max_concurrent,
            log_name,
            None,
        )?;
        hookline
            .child
            .wait_ready(hookline.public, "/readyz", READY_TIMEOUT)
            .await?;
        Ok(hookline)
    }

    /// Starts hookline as [`Hookline::start`] does, without waiting until it is ready; with
    /// `program`, that executable instead of the benchmark's hookline.
    pub fn spawn(
        ctx: &Context,
        variant: Variant,
        data_dir: &Path,
        forward: Option<SocketAddr>,
        max_concurrent: Option<usize>,
        log_name: &str,
        program: Option<&Path>,
    ) -> Result<Hookline, String> {
        let public = child::free_port()?;
        let admin = child::free_port()?;
        let max_concurrent = max_concurrent.unwrap_or((ctx.connections * 4).max(1024));
        let mut env = hookline_env(ctx, data_dir, public, admin, forward, max_concurrent);
        env.push(("HOOKLINE_SYNCHRONOUS".into(), variant.synchronous().into()));
        let (program, args) = match variant {
            Variant::NoStore => (
                std::env::current_exe().map_err(|e| format!("cannot locate myself: {e}"))?,
                vec!["--null-store-server".to_owned()],
            ),
            Variant::NoFsync | Variant::Durable => (
                program.unwrap_or(&ctx.hookline).to_path_buf(),
                vec!["serve".into()],
            ),
        };
        let child = ChildProc::spawn(Spawn {
            name: &variant.name(Ids::Ordered),
            program: &program,
            args: &args,
            env: &env,
            core: ctx.server_core,
            log: ctx.scratch.path.join(log_name),
        })?;
        Ok(Hookline {
            child,
            public,
            admin,
        })
    }
}

/// hookline's environment: data dir, warn-level logs, the ChatBrick secret, the liveDesk token
/// and signing secret, loopback listeners, the request limit, and the forward route.
pub fn hookline_env(
    ctx: &Context,
    data_dir: &Path,
    public: SocketAddr,
    admin: SocketAddr,
    forward: Option<SocketAddr>,
    max_concurrent: usize,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("HOOKLINE_DATA_DIR", data_dir.display().to_string()),
        ("HOOKLINE_LOG", "warn".into()),
        ("HOOKLINE_CHATBRICK_SECRET", ctx.secret.clone()),
        ("HOOKLINE_LIVEDESK_TOKEN", ctx.shape.livedesk_token.clone()),
        ("HOOKLINE_LIVEDESK_SECRET", ctx.livedesk_secret.clone()),
        ("HOOKLINE_LISTEN", public.to_string()),
        ("HOOKLINE_ADMIN_LISTEN", admin.to_string()),
        (
            "HOOKLINE_MAX_CONCURRENT_REQUESTS",
            max_concurrent.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(sink) = forward {
        env.push(("HOOKLINE_FORWARD_URL".into(), format!("http://{sink}/in")));
        env.push(("HOOKLINE_FORWARD_SECRET".into(), ctx.secret.clone()));
    }
    env
}

/// Warm-up, then the measured phase with the server's memory and both processes' CPU recorded.
async fn measure(
    ctx: &Context,
    name: &str,
    server: &mut ChildProc,
    addr: SocketAddr,
    requests: &Arc<Vec<Prepared>>,
) -> Result<TargetResult, String> {
    let pid = server.pid();
    let (conns, warmup) = warm_up(ctx, addr, requests).await?;
    let sampler = Sampler::start(pid, SAMPLE_EVERY);
    let server_cpu = CpuMeter::start(pid);
    let generator_cpu = CpuMeter::start(std::process::id());
    let disk = rss::disk_write_bytes(pid);
    let (_, measured) = load::phase(conns, addr, requests, ctx.warmup..requests.len()).await;
    let cpu = CpuShares {
        server: server_cpu.percent(),
        generator: generator_cpu.percent(),
    };
    let disk_written = disk.zip(rss::disk_write_bytes(pid)).map(|(a, b)| b - a);
    let samples = sampler.finish().await;
    server.check_alive()?;
    let memory = rss::memory(pid).ok_or_else(|| format!("{name} exited during the run"))?;
    let mut result = TargetResult::new(name, &warmup, &measured, memory, &samples, cpu);
    result.disk_kb_per_request = disk_written
        .filter(|_| measured.ok > 0)
        .map(|bytes| round(bytes as f64 / 1024.0 / measured.ok as f64, 2));
    Ok(result)
}

/// Runs the load against a hookline started elsewhere (under a profiler, say): no memory or
/// server CPU numbers, since its process is not ours.
pub async fn attached(ctx: &Context, addr: SocketAddr, ids: Ids) -> Result<TargetResult, String> {
    let requests = Arc::new(ctx.prepare("attached", ids));
    let (conns, warmup) = warm_up(ctx, addr, &requests).await?;
    let generator_cpu = CpuMeter::start(std::process::id());
    let (_, measured) = load::phase(conns, addr, &requests, ctx.warmup..requests.len()).await;
    let cpu = CpuShares {
        server: 0.0,
        generator: generator_cpu.percent(),
    };
    let name = "hookline (attached)";
    Ok(TargetResult::new(
        name,
        &warmup,
        &measured,
        Memory::default(),
        &[],
        cpu,
    ))
}

/// Opens the connections and sends the warm-up requests over them.
async fn warm_up(
    ctx: &Context,
    addr: SocketAddr,
    requests: &Arc<Vec<Prepared>>,
) -> Result<(Vec<Conn>, PhaseStats), String> {
    let conns = load::connect_all(addr, ctx.connections).await?;
    Ok(load::phase(conns, addr, requests, 0..ctx.warmup).await)
}

/// hookline's own counters from its admin `/metrics`; `None` if they cannot be read.
pub async fn store_counters(admin: SocketAddr) -> Option<StoreCounters> {
    let text = metrics_text(admin).await?;
    let batches = metric_sum(&text, "hookline_store_commit_batch_size_count", "");
    let jobs = metric_sum(&text, "hookline_store_commit_batch_size_sum", "");
    Some(StoreCounters {
        accepted_events: metric_sum(&text, "hookline_requests_total", "outcome=\"accepted\"")
            as u64,
        commit_batches: batches as u64,
        mean_commit_batch: if batches > 0.0 {
            round(jobs / batches, 1)
        } else {
            0.0
        },
        delivered_at_end: delivered(&text),
        catch_up_seconds: None,
        checkpoints: metric_sum(
            &text,
            "hookline_store_checkpoint_duration_seconds_count",
            "by=\"writer\"",
        ) as u64,
        checkpoint_seconds: round(
            metric_sum(&text, "hookline_store_checkpoint_duration_seconds_sum", ""),
            3,
        ),
    })
}

/// The histogram of hookline's handler latency (see [`HandlerLatency`]).
const HANDLER_HISTOGRAM: &str = "hookline_intake_duration_seconds";

/// hookline's own histogram of its handler's latency, from its admin `/metrics`; `None` if it
/// cannot be read or counted nothing.
pub async fn handler_latency(admin: SocketAddr) -> Option<HandlerLatency> {
    handler_latency_in(&metrics_text(admin).await?)
}

/// [`handler_latency`] from the text of a `/metrics` page.
fn handler_latency_in(text: &str) -> Option<HandlerLatency> {
    let buckets = histogram_buckets(text, HANDLER_HISTOGRAM);
    let &(_, intakes) = buckets.last()?;
    if intakes == 0.0 {
        return None;
    }
    let within = |seconds: f64| {
        buckets
            .iter()
            .rev()
            .find(|(bound, _)| *bound <= seconds)
            .map_or(0.0, |(_, count)| *count)
    };
    let at_most = |share: f64| {
        let (bound, _) = buckets
            .iter()
            .find(|(_, count)| *count >= share * intakes)?;
        bound.is_finite().then(|| round(bound * 1000.0, 3))
    };
    Some(HandlerLatency {
        intakes: intakes as u64,
        within_5ms_percent: round(100.0 * within(0.005) / intakes, 2),
        p99_at_most_ms: at_most(0.99),
        p999_at_most_ms: at_most(0.999),
    })
}

/// The cumulative buckets of histogram `name` (Prometheus text format), as (upper bound in the
/// histogram's unit, count up to it), summed over label sets and ordered by bound.
fn histogram_buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let bucket = format!("{name}_bucket");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for (series, count) in samples(text, &bucket) {
        let bound = series
            .split("le=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|le| le.parse::<f64>().ok());
        let Some(bound) = bound else {
            continue;
        };
        match buckets.iter_mut().find(|(b, _)| *b == bound) {
            Some((_, total)) => *total += count,
            None => buckets.push((bound, count)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// Waits until the default route's deliveries have caught up with the accepted events; the
/// seconds that took after the load ended, or `None` past [`CATCH_UP_LIMIT`].
async fn catch_up(admin: SocketAddr, accepted: u64) -> Option<f64> {
    let started = Instant::now();
    while started.elapsed() < CATCH_UP_LIMIT {
        let text = metrics_text(admin).await?;
        if delivered(&text) >= accepted {
            return Some(round(started.elapsed().as_secs_f64(), 2));
        }
        tokio::time::sleep(CATCH_UP_POLL).await;
    }
    None
}

/// Deliveries completed so far, over all handlers.
fn delivered(metrics: &str) -> u64 {
    metric_sum(
        metrics,
        "hookline_delivery_attempts_total",
        "outcome=\"delivered\"",
    ) as u64
}

/// The admin `/metrics` page, if it answers.
pub async fn metrics_text(admin: SocketAddr) -> Option<String> {
    let (status, body) = child::get(admin, "/metrics").await.ok()?;
    status
        .is_success()
        .then(|| String::from_utf8_lossy(&body).into_owned())
}

/// Sum of the samples of metric `name` whose labels contain `label` (Prometheus text format).
pub fn metric_sum(text: &str, name: &str, label: &str) -> f64 {
    samples(text, name)
        .filter(|(series, _)| series.contains(label))
        .map(|(_, value)| value)
        .sum()
}

/// The samples of metric `name` in a `/metrics` page (Prometheus text format), as (the series:
/// name and labels, value); lines that do not parse are skipped.
fn samples<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(move |line| {
            let (series, value) = line.rsplit_once(' ')?;
            if series.split('{').next()? != name {
                return None;
            }
            Some((series, value.parse::<f64>().ok()?))
        })
}

#[cfg(test)]
mod tests {
    use super::{handler_latency_in, metric_sum};
    use crate::results::HandlerLatency;

    #[test]
    fn metric_lines_are_summed_by_name_and_label() {
        let text = "# TYPE hookline_requests_total counter\n\
            hookline_requests_total{source=\"chatbrick\",endpoint=\"default\",outcome=\"accepted\"} 40\n\
            hookline_requests_total{source=\"livedesk\",endpoint=\"x\",outcome=\"accepted\"} 2\n\
            hookline_requests_total{source=\"chatbrick\",endpoint=\"default\",outcome=\"duplicate\"} 5\n\
            hookline_store_commit_batch_size_sum 120\n\
            hookline_store_commit_batch_size_count 4\n";
        let accepted = "outcome=\"accepted\"";
        assert_eq!(metric_sum(text, "hookline_requests_total", accepted), 42.0);
        assert_eq!(
            metric_sum(text, "hookline_store_commit_batch_size_count", ""),
            4.0
        );
        assert_eq!(metric_sum(text, "hookline_missing", ""), 0.0);
    }

    #[test]
    fn the_handler_histogram_gives_its_share_within_5_ms_and_bucket_bounds() {
        let text = "# TYPE hookline_intake_duration_seconds histogram\n\
            hookline_intake_duration_seconds_bucket{le=\"0.001\"} 500\n\
            hookline_intake_duration_seconds_bucket{le=\"0.0025\"} 950\n\
            hookline_intake_duration_seconds_bucket{le=\"0.005\"} 995\n\
            hookline_intake_duration_seconds_bucket{le=\"0.01\"} 998\n\
            hookline_intake_duration_seconds_bucket{le=\"+Inf\"} 1000\n\
            hookline_intake_duration_seconds_sum 1.5\n\
            hookline_intake_duration_seconds_count 1000\n";
        assert_eq!(
            handler_latency_in(text),
            Some(HandlerLatency {
                intakes: 1000,
                within_5ms_percent: 99.5,
                p99_at_most_ms: Some(5.0),
                p999_at_most_ms: None,
            }),
            "99.9 % are only under +Inf"
        );
        assert_eq!(handler_latency_in("hookline_requests_total 3\n"), None);
    }
}
