//! The open-loop runs: requests sent on a fixed schedule, whatever the answers, with each
//! latency measured from the time the request was due.
//!
//! A closed-loop run (`load`) sends a connection's next request only when the previous answer is
//! in, so a stall of the server also stops the requests that would have arrived meanwhile, and
//! their waiting is never measured ("coordinated omission"). Senders do not wait for each other:
//! Svix and Chatwoot send when their events happen. Here a scheduler thread releases request `i`
//! at `start + i / rate`; connections take released requests in order, and a request that finds
//! every connection busy waits in the queue, its latency counting from its due time. So a
//! 200 ms stall shows as 200 ms for the requests that were due during it, as a sender would see
//! it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;

use crate::context::Context;
use crate::intake::{self, Hookline, Variant, SAMPLE_EVERY, STOP_TIMEOUT};
use crate::load::{self, new_histogram, Conn, PhaseStats};
use crate::requests::{Ids, Prepared};
use crate::results::{Latency, OpenLoopResult};
use crate::rss::{self, CpuMeter, Sampler};
use crate::stats::round;

/// A request released by the scheduler: its index and when it was due.
type Due = (usize, Instant);
/// The queue of released requests, shared by the connections.
type Queue = Arc<Mutex<mpsc::UnboundedReceiver<Due>>>;

/// Pause between connecting and the first due time, so that the schedule starts on time.
const LEAD_IN: Duration = Duration::from_millis(50);
/// The scheduler sends a request without sleeping when it is due within this.
const SPIN: Duration = Duration::from_micros(20);
/// Reconnections one connection may make after transport errors before it gives up.
const MAX_RECONNECTS: u32 = 3;

/// A rate as asked on the command line: requests per second, or a percentage of the
/// throughput the same run measured with the same ids (closed loop, durable).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Requests per second.
    PerSecond(f64),
    /// Percent of the measured saturation throughput.
    OfSaturation(f64),
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        let bad = || {
            format!("{text:?}: a rate is requests per second (5000) or a percentage of the measured throughput (50%)")
        };
        let (number, percent) = match text.trim().strip_suffix('%') {
            Some(number) => (number, true),
            None => (text.trim(), false),
        };
        let value: f64 = number.trim().parse().map_err(|_| bad())?;
        if !(value.is_finite() && value > 0.0) {
            return Err(bad());
        }
        Ok(if percent {
            Rate::OfSaturation(value)
        } else {
            Rate::PerSecond(value)
        })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::PerSecond(rate) => write!(f, "{rate}/s"),
            Rate::OfSaturation(percent) => write!(f, "{percent}%"),
        }
    }
}

impl Rate {
    /// Requests per second, given the measured saturation throughput (if any).
    pub fn per_second(self, saturation: Option<f64>) -> Result<f64, String> {
        match (self, saturation) {
            (Rate::PerSecond(rate), _) => Ok(rate),
            (Rate::OfSaturation(percent), Some(saturation)) => Ok(saturation * percent / 100.0),
            (Rate::OfSaturation(_), None) => Err(format!(
                "--rate {self} needs the durable run with the same ids in this run: do not skip it"
            )),
        }
    }
}

/// Runs hookline (durable, fresh data dir) at `rate` requests per second with `ids` for
/// `duration`, and reads back what it counted.
pub async fn run(
    ctx: &Context,
    ids: Ids,
    rate: Rate,
    saturation: Option<f64>,
    duration: Duration,
) -> Result<OpenLoopResult, String> {
    let per_second = rate.per_second(saturation)?;
    let count = (per_second * duration.as_secs_f64()).round().max(1.0) as usize;
    let label = format!(
        "open-{}-{}",
        ids.name(),
        rate.to_string().replace(['%', '/'], "")
    );
    let data = ctx.scratch.path.join(&label);
    let log = format!("hookline-{label}.log");
    let mut hookline = Hookline::start(ctx, Variant::Durable, &data, None, None, &log).await?;
    let requests = Arc::new(ctx.prepare_n(count, &label, ids));
    let conns = load::connect_all(hookline.public, ctx.connections).await?;
    let pid = hookline.child.pid();
    let sampler = Sampler::start(pid, SAMPLE_EVERY);
    let cpu = CpuMeter::start(pid);
    let disk = rss::disk_write_bytes(pid);
    let sent = send_on_schedule(conns, hookline.public, &requests, per_second).await;
    let server_cpu = cpu.percent();
    let disk_written = disk.zip(rss::disk_write_bytes(pid)).map(|(a, b)| b - a);
    let samples = sampler.finish().await;
    hookline.child.check_alive()?;
    let memory = rss::memory(pid).ok_or("hookline exited during the open-loop run")?;
    let store = intake::store_counters(hookline.admin).await;
    let handler = intake::handler_latency(hookline.admin).await;
    hookline.child.terminate(STOP_TIMEOUT).await?;
    if !ctx.scratch.keep {
        let _ = std::fs::remove_dir_all(&data);
    }
    let stats = &sent.stats;
    let answered = stats.ok + stats.non_2xx;
    Ok(OpenLoopResult {
        name: format!("hookline (durable, {} ids) at {rate}", ids.name()),
        ids,
        rate: rate.to_string(),
        target_per_s: round(per_second, 0),
        saturation_per_s: saturation,
        share_of_saturation: share_of(per_second, saturation),
        seconds: round(stats.elapsed.as_secs_f64(), 3),
        scheduled: count as u64,
        answered_per_s: round(answered as f64 / stats.elapsed.as_secs_f64().max(1e-9), 0),
        ok: stats.ok,
        non_2xx: stats.non_2xx,
        errors: stats.errors,
        unsent: (count as u64).saturating_sub(answered + stats.errors),
        first_failure: stats.first_failure.clone(),
        latency: Latency::from_histogram(&stats.latency_us),
        send_lag: Latency::from_histogram(&sent.lag_us),
        server_cpu_percent: round(server_cpu, 0),
        peak_rss_mb: round(rss::kb_to_mb(memory.hwm_kb), 1),
        sampled_max_rss_mb: round(rss::max_mb(&samples), 1),
        disk_kb_per_request: disk_written.map(|b| round(b as f64 / 1024.0 / count as f64, 2)),
        store,
        handler,
    })
}

/// `per_second` as a share of the `saturation` throughput, when one was measured.
fn share_of(per_second: f64, saturation: Option<f64>) -> Option<f64> {
    saturation.filter(|s| *s > 0.0).map(|s| per_second / s)
}

/// What the connections saw, and how late requests left the generator.
struct Sent {
    /// Latency from each request's due time to its answer.
    stats: PhaseStats,
    /// From each request's due time to the moment a connection started writing it, in µs:
    /// the generator's own lateness plus the wait for a free connection.
    lag_us: hdrhistogram::Histogram<u64>,
}

/// Releases every request at its due time from a scheduler thread and sends each on the first
/// free connection.
async fn send_on_schedule(
    conns: Vec<Conn>,
    addr: SocketAddr,
    requests: &Arc<Vec<Prepared>>,
    per_second: f64,
) -> Sent {
    let (release, queue) = mpsc::unbounded_channel();
    let queue: Queue = Arc::new(Mutex::new(queue));
    let start = Instant::now() + LEAD_IN;
    let count = requests.len();
    let scheduler = std::thread::Builder::new()
        .name("open-loop-scheduler".into())
        .spawn(move || schedule(release, start, per_second, count));
    let mut tasks = JoinSet::new();
    for conn in conns {
        tasks.spawn(connection(conn, addr, requests.clone(), queue.clone()));
    }
    let mut sent = Sent {
        stats: PhaseStats::new(),
        lag_us: new_histogram(),
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(one) => {
                sent.stats.merge(one.stats);
                sent.lag_us
                    .add(&one.lag_us)
                    .expect("histograms share their bounds");
            }
            Err(e) => sent
                .stats
                .record_error(format!("connection task failed: {e}")),
        }
    }
    if let Err(e) = scheduler.map(|thread| thread.join()) {
        sent.stats
            .record_error(format!("cannot start the scheduler: {e}"));
    }
    sent.stats.elapsed = start.elapsed();
    sent
}

/// The scheduler: releases request `i` at `start + i / per_second`, sleeping in between
/// (several at once when it woke late), then closes the queue.
fn schedule(release: mpsc::UnboundedSender<Due>, start: Instant, per_second: f64, count: usize) {
    for i in 0..count {
        let due = start + Duration::from_secs_f64(i as f64 / per_second);
        let now = Instant::now();
        if due > now + SPIN {
            std::thread::sleep(due - now);
        }
        if release.send((i, due)).is_err() {
            return;
        }
    }
}

/// One connection: take the next released request, send it, record its latency from its due
/// time, until the queue is closed and empty. A closed connection is reopened; one that keeps
/// failing gives up, leaving the rest of the queue to the others.
async fn connection(
    conn: Conn,
    addr: SocketAddr,
    requests: Arc<Vec<Prepared>>,
    queue: Queue,
) -> Sent {
    let mut sent = Sent {
        stats: PhaseStats::new(),
        lag_us: new_histogram(),
    };
    let mut conn = Some(conn);
    let mut failures = 0;
    loop {
        let next = queue.lock().await.recv().await;
        let Some((index, due)) = next else { break };
        if conn.is_none() {
            match Conn::open(addr).await {
                Ok(fresh) => conn = Some(fresh),
                Err(error) => {
                    sent.stats.record_error(error);
                    failures += 1;
                    if failures > MAX_RECONNECTS {
                        break;
                    }
                    continue;
                }
            }
        }
        let Some(live) = conn.as_mut() else { continue };
        sent.lag_us
            .saturating_record((due.elapsed().as_micros() as u64).max(1));
        match live.exchange(&requests[index]).await {
            Ok(answer) => {
                sent.stats.record(answer, due.elapsed());
                if answer.close {
                    conn = None;
                }
            }
            Err(error) => {
                sent.stats.record_error(error);
                failures += 1;
                conn = None;
                if failures > MAX_RECONNECTS {
                    break;
                }
            }
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_or_a_share_of_saturation() {
        assert_eq!("5000".parse::<Rate>(), Ok(Rate::PerSecond(5000.0)));
        assert_eq!(" 50% ".parse::<Rate>(), Ok(Rate::OfSaturation(50.0)));
        assert!("0".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
        assert_eq!(
            Rate::OfSaturation(50.0).per_second(Some(20_000.0)),
            Ok(10_000.0)
        );
        assert!(Rate::OfSaturation(50.0).per_second(None).is_err());
        assert_eq!(Rate::PerSecond(7.0).per_second(None), Ok(7.0));
    }

    #[test]
    fn half_of_an_odd_throughput_is_half_not_a_hair_above() {
        for saturation in [17_353.0, 15_771.0, 20_001.0] {
            let per_second = Rate::OfSaturation(50.0).per_second(Some(saturation));
            let share = share_of(per_second.unwrap(), Some(saturation)).unwrap();
            assert!((share - 0.5).abs() < 1e-12, "{saturation}: {share}");
            let rounded = (saturation / 2.0).round() / saturation;
            assert!(rounded > 0.5, "rounding the rate first gave {rounded}");
        }
        assert_eq!(share_of(5000.0, None), None);
        assert_eq!(share_of(5000.0, Some(20_000.0)), Some(0.25));
    }

    #[test]
    fn the_schedule_releases_every_request_at_its_due_time_in_order() {
        let (release, mut queue) = mpsc::unbounded_channel();
        let start = Instant::now();
        let interval = Duration::from_millis(2);
        schedule(release, start, 500.0, 5);
        let mut released = Vec::new();
        while let Ok((index, due)) = queue.try_recv() {
            released.push((index, due - start));
        }
        let expected: Vec<(usize, Duration)> = (0..5).map(|i| (i, interval * i as u32)).collect();
        assert_eq!(released, expected);
        assert!(
            start.elapsed() >= interval * 4,
            "it waited for the last one"
        );
    }
}
