//! The crash-recovery run: how long hookline takes to answer again after `kill -9` left a full
//! WAL behind.
//!
//! Each round starts hookline on a fresh data dir, sends events until its `-wal` file holds
//! `--recovery-wal-mb` of frames, kills it with `SIGKILL` at once, starts it again on the same
//! data dir and times, from that start, the first 2xx to a new event and the first 200 of
//! `/readyz`. hookline checkpoints in the background from 64 MiB of WAL on, so its WAL rarely
//! holds much more; `--recovery-fill-with` fills it with another build (one that checkpointed
//! at 256 MiB, say), to time the restart of an upgrade after a crash. SQLite must read the whole WAL
//! back before the store can commit (it rebuilds its index of the frames); anything the start
//! does on top, such as copying the WAL into the database file before answering, shows in the
//! time and in the database file's growth.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::child::{self, ChildProc};
use crate::context::Context;
use crate::intake::{Hookline, Variant, STOP_TIMEOUT};
use crate::load::{self, Conn};
use crate::requests::{Ids, Prepared};
use crate::results::{RecoveryResult, RecoveryRound};
use crate::stats::{median_index, round};

/// SQLite's WAL: a 32-byte header, then frames of a 24-byte header and a 4 KiB page.
const WAL_HEADER: u64 = 32;
/// One WAL frame of hookline's 4 KiB pages.
const WAL_FRAME: u64 = 24 + 4096;
/// How often the fill looks at the WAL's size.
const WAL_POLL: Duration = Duration::from_millis(2);
/// Requests prepared per WAL frame the fill must reach: every event writes at least half a
/// frame of WAL, so the fill cannot run out first.
const REQUESTS_PER_FRAME: u64 = 2;
/// Longest a restarted hookline may take to answer.
const ANSWER_LIMIT: Duration = Duration::from_secs(120);
/// Pause between attempts while the restarted hookline does not answer yet.
const RETRY_EVERY: Duration = Duration::from_millis(1);

/// Runs `rounds` kills and restarts with a WAL of `wal_mb` MiB, filled by `fill_with` (default:
/// the hookline measured).
pub async fn run(
    ctx: &Context,
    wal_mb: f64,
    rounds: usize,
    fill_with: Option<&Path>,
) -> Result<RecoveryResult, String> {
    let mut results = Vec::with_capacity(rounds);
    for nth in 0..rounds {
        results.push(one_round(ctx, wal_mb, nth, fill_with).await?);
    }
    let median = median_index(&results, |r| r.first_2xx_ms)
        .map(|at| results[at].first_2xx_ms)
        .unwrap_or(0.0);
    Ok(RecoveryResult {
        wal_target_mb: wal_mb,
        rounds: results,
        median_first_2xx_ms: median,
    })
}

/// Fills, kills, restarts and times one round.
async fn one_round(
    ctx: &Context,
    wal_mb: f64,
    nth: usize,
    fill_with: Option<&Path>,
) -> Result<RecoveryRound, String> {
    let label = format!("recovery-{nth}");
    let data = ctx.scratch.path.join(&label);
    let wal = data.join("hookline.db-wal");
    let db = data.join("hookline.db");
    let frames = (wal_mb * 1024.0 * 1024.0 / 4096.0).ceil() as u64;
    let fill_log = format!("hookline-{label}-fill.log");
    let mut hookline = Hookline::spawn(
        ctx,
        Variant::Durable,
        &data,
        None,
        None,
        &fill_log,
        fill_with,
    )?;
    hookline
        .child
        .wait_ready(hookline.public, "/readyz", ANSWER_LIMIT)
        .await?;
    let requests =
        Arc::new(ctx.prepare_n((frames * REQUESTS_PER_FRAME) as usize, &label, Ids::Ordered));
    let acknowledged = fill_then_kill(
        ctx,
        &mut hookline,
        &requests,
        &wal,
        WAL_HEADER + frames * WAL_FRAME,
    )
    .await?;
    let (wal_mb_at_kill, db_mb_at_kill) = (mib(&wal), mib(&db));
    let probes = ctx.prepare_n(1000, &format!("{label}-probe"), Ids::Ordered);
    let started = Instant::now();
    let restart_log = format!("hookline-{label}-restart.log");
    let mut restarted =
        Hookline::spawn(ctx, Variant::Durable, &data, None, None, &restart_log, None)?;
    let ready = tokio::spawn(time_until_ready(restarted.public, started));
    let first_2xx = first_2xx(&mut restarted.child, restarted.public, &probes, started).await?;
    let db_mb_at_first_2xx = mib(&db);
    let ready = ready
        .await
        .map_err(|e| format!("readiness poll failed: {e}"))??;
    restarted.child.terminate(STOP_TIMEOUT).await?;
    if !ctx.scratch.keep {
        let _ = std::fs::remove_dir_all(&data);
    }
    Ok(RecoveryRound {
        acknowledged,
        wal_mb_at_kill,
        db_mb_at_kill,
        first_2xx_ms: millis(first_2xx),
        ready_ms: millis(ready),
        db_mb_at_first_2xx,
    })
}

/// Sends `requests` until the WAL reaches `wal_bytes`, then kills hookline (`SIGKILL`) at once;
/// returns how many were acknowledged. An error if the requests ran out first (the store kept
/// its WAL smaller, checkpointing earlier).
async fn fill_then_kill(
    ctx: &Context,
    hookline: &mut Hookline,
    requests: &Arc<Vec<Prepared>>,
    wal: &Path,
    wal_bytes: u64,
) -> Result<u64, String> {
    let conns = load::connect_all(hookline.public, ctx.connections).await?;
    let (addr, all, requests_) = (hookline.public, 0..requests.len(), requests.clone());
    let mut load = tokio::spawn(async move { load::phase(conns, addr, &requests_, all).await });
    let reached = loop {
        if size(wal) >= wal_bytes {
            break true;
        }
        tokio::select! {
            _ = &mut load => break size(wal) >= wal_bytes,
            _ = tokio::time::sleep(WAL_POLL) => {}
        }
    };
    hookline.child.kill();
    if !reached {
        return Err(format!(
            "the WAL never reached {:.0} MiB ({:.1} MiB after {} events): this hookline checkpoints earlier",
            wal_bytes as f64 / 1048576.0,
            mib(wal),
            requests.len()
        ));
    }
    let (_, stats) = load.await.map_err(|e| format!("fill load failed: {e}"))?;
    Ok(stats.ok)
}

/// Sends a new event, on a new connection, until one is answered 2xx; the time from `started`.
async fn first_2xx(
    child: &mut ChildProc,
    addr: SocketAddr,
    probes: &[Prepared],
    started: Instant,
) -> Result<Duration, String> {
    for probe in probes.iter().cycle() {
        if started.elapsed() > ANSWER_LIMIT {
            break;
        }
        child.check_alive()?;
        if let Ok(mut conn) = Conn::open(addr).await {
            if let Ok(answer) = conn.exchange(probe).await {
                if (200..300).contains(&answer.status) {
                    return Ok(started.elapsed());
                }
            }
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
    Err(format!(
        "the restarted hookline answered no event with 2xx within {ANSWER_LIMIT:?}"
    ))
}

/// Polls `/readyz` until it answers 200; the time from `started`.
async fn time_until_ready(addr: SocketAddr, started: Instant) -> Result<Duration, String> {
    while started.elapsed() < ANSWER_LIMIT {
        if let Ok((status, _)) = child::get(addr, "/readyz").await {
            if status.is_success() {
                return Ok(started.elapsed());
            }
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
    Err(format!(
        "the restarted hookline was not ready within {ANSWER_LIMIT:?}"
    ))
}

/// A file's size in bytes, 0 if it does not exist.
fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// A file's size in MiB, rounded.
fn mib(path: &Path) -> f64 {
    round(size(path) as f64 / 1048576.0, 1)
}

fn millis(d: Duration) -> f64 {
    round(d.as_secs_f64() * 1000.0, 1)
}
