//! The delivery run: fill hookline's inbox with a backlog of events bound for a local sink, then
//! restart hookline and measure how fast the stored backlog drains to the sink, and how its
//! memory behaves meanwhile.
//!
//! While the backlog fills, the sink holds every answer (for up to 5 s, well under the forward
//! timeout), so only the forward handler's 32 concurrent deliveries are in flight and the rest
//! stays stored. hookline is then stopped (SIGTERM, the held answers are released so that it stops
//! at once) and started again on the same data directory: what it delivers from then on is a
//! stored backlog, drained at full speed.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::intake::{Hookline, Variant};
use crate::load::{self, PhaseStats};
use crate::requests::Ids;
use crate::results::{DeliveryResult, MemorySeries};
use crate::rss::{self, Sampler};
use crate::servers::{Sink, SinkState};
use crate::stats::round;

/// Resident-size sampling interval while draining.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How often the sink's progress is checked.
const PROGRESS_POLL: Duration = Duration::from_millis(10);
/// Time hookline has to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Fills a backlog of `events`, restarts hookline, and measures the drain.
pub async fn run(
    ctx: &Context,
    events: usize,
    time_limit: Duration,
) -> Result<DeliveryResult, String> {
    let sink = Sink::start(false).await?;
    let data = ctx.scratch.path.join("delivery");
    let fill = fill_backlog(ctx, &sink, &data, events).await?;
    let delivered_during_fill = sink.state.unique() as u64;
    sink.state.reset_clock();
    let drain = drain(ctx, &sink, &data, events, time_limit).await?;
    Ok(summarize(
        events,
        &fill,
        delivered_during_fill,
        &sink.state,
        drain,
    ))
}

/// What the drain phase observed besides the sink's own counts.
#[derive(Debug)]
struct Drain {
    /// When hookline was started on the backlog.
    started: Instant,
    /// Every event reached the sink in time.
    complete: bool,
    /// hookline's resident size while draining.
    rss: MemorySeries,
}

/// Starts hookline on the stored backlog (sink answering at once) and waits until the sink has
/// every event, sampling hookline's memory.
async fn drain(
    ctx: &Context,
    sink: &Sink,
    data: &Path,
    events: usize,
    time_limit: Duration,
) -> Result<Drain, String> {
    let started = Instant::now();
    let mut hookline = Hookline::start(
        ctx,
        Variant::Durable,
        data,
        Some(sink.addr),
        None,
        "hookline-drain.log",
    )
    .await?;
    let pid = hookline.child.pid();
    let sampler = Sampler::start(pid, SAMPLE_EVERY);
    let complete = wait_drained(&sink.state, &mut hookline, events, time_limit).await?;
    let samples = sampler.finish().await;
    let peak_kb = rss::memory(pid).map(|m| m.hwm_kb).unwrap_or(0);
    hookline.child.terminate(STOP_TIMEOUT).await?;
    Ok(Drain {
        started,
        complete,
        rss: MemorySeries::new(samples, peak_kb),
    })
}

/// The delivery result: drain rate from the sink's first to last new event after the restart.
fn summarize(
    events: usize,
    fill: &PhaseStats,
    delivered_during_fill: u64,
    sink: &SinkState,
    drain: Drain,
) -> DeliveryResult {
    let (first, last) = sink.window();
    let drained = (sink.unique() as u64).saturating_sub(delivered_during_fill);
    let drain_seconds = match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    let from_start = last.map_or(0.0, |l| l.duration_since(drain.started).as_secs_f64());
    DeliveryResult {
        events: events as u64,
        fill_requests_per_s: round(fill.requests_per_s(), 0),
        fill_failed: fill.failed(),
        fill_first_failure: fill.first_failure.clone(),
        delivered_during_fill,
        drained,
        drain_seconds: round(drain_seconds, 3),
        events_per_s: if drain_seconds > 0.0 {
            round(drained as f64 / drain_seconds, 0)
        } else {
            0.0
        },
        seconds_from_start: round(from_start, 3),
        sink_requests: sink.requests(),
        complete: drain.complete,
        rss: drain.rss,
    }
}

/// Starts hookline with the forward route and the sink holding answers, sends `events` signed
/// events, then stops hookline (releasing the held answers so it stops at once).
async fn fill_backlog(
    ctx: &Context,
    sink: &Sink,
    data: &Path,
    events: usize,
) -> Result<PhaseStats, String> {
    let mut hookline = Hookline::start(
        ctx,
        Variant::Durable,
        data,
        Some(sink.addr),
        None,
        "hookline-fill.log",
    )
    .await?;
    let requests = Arc::new(ctx.prepare_n(events, "dlv", Ids::Ordered));
    let conns = load::connect_all(hookline.public, ctx.connections).await?;
    let (conns, stats) = load::phase(conns, hookline.public, &requests, 0..events).await;
    drop(conns);
    hookline.child.check_alive()?;
    hookline.child.signal_term()?;
    sink.state.set_open(true);
    hookline.child.wait_exit(STOP_TIMEOUT).await?;
    Ok(stats)
}

/// Waits until the sink has every event, hookline exits, or the time limit passes; `Ok(true)`
/// when every event arrived.
async fn wait_drained(
    sink: &SinkState,
    hookline: &mut Hookline,
    events: usize,
    time_limit: Duration,
) -> Result<bool, String> {
    let deadline = Instant::now() + time_limit;
    while Instant::now() < deadline {
        if sink.unique() >= events {
            return Ok(true);
        }
        hookline.child.check_alive()?;
        tokio::time::sleep(PROGRESS_POLL).await;
    }
    Ok(false)
}
