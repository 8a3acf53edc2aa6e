//! The PostgreSQL runs (`--postgres`): hookline durable on a scratch PostgreSQL cluster on this
//! machine, with one replica and with two, measured with the same load as the SQLite runs of the
//! same invocation (docs/performance.md, "PostgreSQL").
//!
//! The cluster is the tests' (`tests/common/postgres.rs`): `initdb` and `pg_ctl` of Debian's
//! `postgresql` package, run as the `postgres` user when the benchmark runs as root, default
//! durability (`fsync` and `synchronous_commit` on). It is never pinned: with `--pin` hookline
//! runs on core 0 and the load generator on core 1, and PostgreSQL takes what it finds (its
//! processes are unpinned from the generator's core, which they inherit, see [`unpin`]).
//! Two replicas each get half the connections; the memory reported is each replica's peak (the
//! table shows the largest) and the database server's (all its processes, by proportional
//! share), the CPU both replicas'.

#[path = "../../tests/common/postgres.rs"]
#[allow(dead_code, clippy::all)]
mod cluster;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::child::{self, ChildProc, Spawn};
use crate::context::Context;
use crate::intake::{hookline_env, IDLE_SETTLE, SAMPLE_EVERY, STOP_TIMEOUT};
use crate::load;
use crate::requests::Ids;
use crate::results::{CpuShares, TargetResult};
use crate::rss::{self, CpuMeter, Sampler};
use crate::stats;

/// How often the database server's memory is read: each read walks `/proc` for its processes
/// and the page tables of each (`smaps_rollup`, which likely holds off a backend that maps or
/// unmaps memory meanwhile), so seldom. Every 250 ms cost PostgreSQL's p99 1.5–3 ms in the
/// benchmark (docs/performance-log.md); its memory is its shared buffers and backends, which
/// grow early and then hold, so a sample every 2 s still sees the peak.
const DATABASE_SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// Time a replica has to become ready (it migrates an empty database first).
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Starts a scratch cluster and measures hookline on it with 1 and 2 replicas, for each kind
/// of ids of the run.
pub async fn run(ctx: &Context) -> Result<Vec<TargetResult>, String> {
    let cluster = tokio::task::spawn_blocking(cluster::Cluster::start)
        .await
        .map_err(|e| format!("the scratch PostgreSQL did not start: {e}"))?;
    if ctx.server_core.is_some() {
        unpin(&cluster)?;
    }
    let mut results = Vec::new();
    for replicas in [1, 2] {
        for &ids in &ctx.ids {
            crate::progress(&format!(
                "PostgreSQL: {replicas} replica(s), {} ids, {} connections",
                ids.name(),
                ctx.connections
            ));
            results.push(measure(ctx, &cluster, replicas, ids).await?);
        }
    }
    Ok(results)
}

/// Lets the cluster's processes, and the backends it starts later, run on any core. Started
/// by the pinned load generator, they inherited its core: PostgreSQL then shared one core with
/// the load while the other core's idle time went unused, which a database on a host of its
/// own would not suffer.
fn unpin(cluster: &cluster::Cluster) -> Result<(), String> {
    let postmaster = cluster
        .server_pid()
        .ok_or("the scratch PostgreSQL is not running")?;
    child::unpin(postmaster)?;
    for pid in rss::descendants(postmaster) {
        // A process that has exited since the walk is no longer to be unpinned.
        let _ = child::unpin(pid);
    }
    Ok(())
}

/// The name of a run in the table (and in checks, which look the runs up by it).
pub fn name(replicas: usize, ids: Ids) -> String {
    let ids = match ids {
        Ids::Ordered => "",
        Ids::Random => ", random",
    };
    format!("hookline (PG, {replicas} repl{ids})")
}

/// `replicas` hookline processes on a fresh database, the load spread over them.
async fn measure(
    ctx: &Context,
    cluster: &cluster::Cluster,
    replicas: usize,
    ids: Ids,
) -> Result<TargetResult, String> {
    let url = cluster.url(&cluster.database());
    let label = format!("pg{replicas}-{}", ids.name());
    let mut servers = Vec::new();
    for n in 0..replicas {
        servers.push(start(ctx, &url, &format!("{label}-{n}")).await?);
    }
    tokio::time::sleep(IDLE_SETTLE).await;
    let requests = Arc::new(ctx.prepare(&label, ids));
    let mut conns = Vec::new();
    for (n, (_, addr)) in servers.iter().enumerate() {
        let share = ctx.connections / replicas + usize::from(n < ctx.connections % replicas);
        conns.extend(load::connect_all(*addr, share).await?);
    }
    let first = servers[0].1;
    let (conns, warmup) = load::phase(conns, first, &requests, 0..ctx.warmup).await;
    let pids: Vec<u32> = servers.iter().map(|(child, _)| child.pid()).collect();
    let sampler = Sampler::start(pids[0], SAMPLE_EVERY);
    let postmaster = cluster
        .server_pid()
        .ok_or("the scratch PostgreSQL is not running")?;
    let database_sampler = Sampler::start_tree(postmaster, DATABASE_SAMPLE_EVERY);
    let server_cpu: Vec<CpuMeter> = pids.iter().map(|&pid| CpuMeter::start(pid)).collect();
    let generator_cpu = CpuMeter::start(std::process::id());
    let range = ctx.warmup..requests.len();
    let (_, measured) = load::phase(conns, first, &requests, range).await;
    let cpu = CpuShares {
        server: server_cpu.iter().map(CpuMeter::percent).sum(),
        generator: generator_cpu.percent(),
    };
    let samples = sampler.finish().await;
    let database = database_sampler.finish().await;
    let memories = pids
        .iter()
        .map(|&pid| rss::memory(pid))
        .collect::<Option<Vec<_>>>()
        .ok_or("a replica exited during the run")?;
    let largest = memories.iter().copied().max_by_key(|m| m.hwm_kb);
    let mut result = TargetResult::new(
        &name(replicas, ids),
        &warmup,
        &measured,
        largest.unwrap_or_default(),
        &samples,
        cpu,
    );
    if replicas > 1 {
        result.replicas_peak_rss_mb = memories
            .iter()
            .map(|m| stats::round(rss::kb_to_mb(m.hwm_kb), 1))
            .collect();
    }
    result.database_peak_mb = Some(stats::round(rss::max_mb(&database), 1));
    for (mut child, _) in servers {
        child.terminate(STOP_TIMEOUT).await?;
    }
    Ok(result)
}

/// Starts one replica on `url`; returns it and its public address once it is ready.
async fn start(ctx: &Context, url: &str, label: &str) -> Result<(ChildProc, SocketAddr), String> {
    let public = child::free_port()?;
    let admin = child::free_port()?;
    let data = ctx.scratch.path.join(label);
    let max_concurrent = (ctx.connections * 4).max(1024);
    let mut env = hookline_env(ctx, &data, public, admin, None, max_concurrent);
    env.push(("HOOKLINE_DATABASE_URL".into(), url.to_owned()));
    let mut server = ChildProc::spawn(Spawn {
        name: label,
        program: &ctx.hookline,
        args: &["serve".to_owned()],
        env: &env,
        core: ctx.server_core,
        log: ctx.scratch.path.join(format!("hookline-{label}.log")),
    })?;
    server.wait_ready(public, "/readyz", READY_TIMEOUT).await?;
    Ok((server, public))
}
