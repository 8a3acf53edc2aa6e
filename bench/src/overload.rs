//! The overload run: hookline limited to `limit` concurrent requests and driven by four times as
//! many connections, to show that what it cannot hold is answered at once with `503` and
//! `Retry-After`, that what it answers 2xx is stored, and that its memory stays bounded.
//!
//! The generator does not honour `Retry-After` (a connection sends its next request as soon as
//! the answer is in), so this is harsher than a real sender: most answers are 503s.

use std::sync::Arc;

use crate::context::Context;
use crate::intake::{self, Hookline, Variant, IDLE_SETTLE, SAMPLE_EVERY, STOP_TIMEOUT};
use crate::load;
use crate::requests::Ids;
use crate::results::{Latency, OverloadResult};
use crate::rss::{self, Sampler};
use crate::stats::round;

/// Connections per request slot of hookline's limit.
pub const OVERSUBSCRIPTION: usize = 4;

/// Starts hookline with `HOOKLINE_MAX_CONCURRENT_REQUESTS=limit`, sends `--requests` requests
/// over `4 × limit` connections, and reads back what it stored.
pub async fn run(ctx: &Context, limit: usize) -> Result<OverloadResult, String> {
    let data = ctx.scratch.path.join("overload");
    let mut hookline = Hookline::start(
        ctx,
        Variant::Durable,
        &data,
        None,
        Some(limit),
        "hookline-overload.log",
    )
    .await?;
    tokio::time::sleep(IDLE_SETTLE).await;
    let pid = hookline.child.pid();
    let idle = rss::memory(pid).ok_or("hookline exited before the load")?;
    let requests = Arc::new(ctx.prepare("overload", Ids::Ordered));
    let connections = limit * OVERSUBSCRIPTION;
    let conns = load::connect_all(hookline.public, connections).await?;
    let sampler = Sampler::start(pid, SAMPLE_EVERY);
    let (_, stats) = load::phase(conns, hookline.public, &requests, 0..requests.len()).await;
    let samples = sampler.finish().await;
    hookline.child.check_alive()?;
    let memory = rss::memory(pid).ok_or("hookline exited during the overload run")?;
    let text = intake::metrics_text(hookline.admin)
        .await
        .ok_or("cannot read hookline's /metrics after the overload run")?;
    let stored = intake::metric_sum(&text, "hookline_requests_total", "outcome=\"accepted\"");
    let refused = intake::metric_sum(&text, "hookline_requests_total", "outcome=\"overloaded\"");
    hookline.child.terminate(STOP_TIMEOUT).await?;
    Ok(OverloadResult {
        limit,
        connections,
        requests: stats.ok + stats.non_2xx,
        seconds: round(stats.elapsed.as_secs_f64(), 3),
        accepted: stats.ok,
        accepted_per_s: round(stats.ok as f64 / stats.elapsed.as_secs_f64().max(1e-9), 0),
        retry_later: stats.retry_later,
        unexpected: stats.unexpected(),
        first_unexpected: stats.first_unexpected.clone(),
        accepted_latency: Latency::from_histogram(&stats.latency_us),
        retry_later_latency: Latency::from_histogram(&stats.rejected_latency_us),
        stored_events: stored as u64,
        counted_overloaded: refused as u64,
        idle_rss_mb: round(rss::kb_to_mb(idle.rss_kb), 1),
        sampled_max_rss_mb: round(rss::max_mb(&samples), 1),
        peak_rss_mb: round(rss::kb_to_mb(memory.hwm_kb), 1),
    })
}
