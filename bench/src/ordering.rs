//! The ordering run (docs/ordering.md): how fast hookline forwards a stored backlog on a route
//! ordered by a body field with many active keys, and with a single hot key, next to the same
//! route unordered. Each measurement fills a backlog while the sink holds its answers, restarts
//! hookline on it and times the drain, as the delivery run does; the routes take turns within
//! each round, so that the noise of a shared machine falls on all of them alike.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::child::{self, ChildProc, Spawn};
use crate::context::Context;
use crate::load;
use crate::requests::{chatbrick_head, Prepared};
use crate::results::{OrderingResult, OrderingRound};
use crate::servers::Sink;
use crate::stats::{self, median_index};

/// Time hookline has to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Time hookline has to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest one drain may take.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);

/// One route to measure: its name, what it orders by, and how many keys the events spread over.
struct Mode {
    name: &'static str,
    order_by: Option<&'static str>,
    keys: usize,
    /// The share of the run's events it is measured with (a single key is slow by definition).
    divisor: usize,
}

const MODES: [Mode; 3] = [
    Mode {
        name: "unordered",
        order_by: None,
        keys: 1000,
        divisor: 1,
    },
    Mode {
        name: "ordered, 1000 keys",
        order_by: Some("data.key"),
        keys: 1000,
        divisor: 1,
    },
    Mode {
        name: "ordered, 1 key",
        order_by: Some("data.key"),
        keys: 1,
        divisor: 10,
    },
];

/// Measures every mode `rounds` times in turn with `events` events each (a tenth for the hot
/// key); prints each drain rate as it goes and returns them all with the medians.
pub async fn run(ctx: &Context, events: usize, rounds: usize) -> Result<OrderingResult, String> {
    let mut measured = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut rates = [0.0; 3];
        for (rate, mode) in rates.iter_mut().zip(&MODES) {
            *rate = measure(ctx, mode, events / mode.divisor, round).await?;
            eprintln!(
                "hookline-bench: ordering round {round}: {}: {rate:.0} events/s",
                mode.name
            );
        }
        let [unordered, ordered, hot_key] = rates;
        let ratio = if unordered > 0.0 {
            stats::round(ordered / unordered, 2)
        } else {
            0.0
        };
        eprintln!("hookline-bench: ordering round {round}: ordered / unordered = {ratio:.2}");
        measured.push(OrderingRound {
            unordered: unordered.round(),
            ordered: ordered.round(),
            hot_key: hot_key.round(),
            ratio,
        });
    }
    Ok(OrderingResult {
        events: events as u64,
        hot_key_events: (events / MODES[2].divisor) as u64,
        ratio_ordered_to_unordered: median(&measured, |r| r.ratio),
        hot_key_events_per_s: median(&measured, |r| r.hot_key),
        rounds: measured,
    })
}

/// The median of `value` over the rounds (the lower middle one for an even count, as the rest
/// of the report takes it).
fn median(rounds: &[OrderingRound], value: impl Fn(&OrderingRound) -> f64) -> f64 {
    median_index(rounds, &value).map_or(0.0, |at| value(&rounds[at]))
}

/// Fills a backlog of `events` for `mode`'s route, restarts hookline on it, and returns the
/// drain rate (events per second from the sink's first to its last new event).
async fn measure(ctx: &Context, mode: &Mode, events: usize, round: usize) -> Result<f64, String> {
    let sink = Sink::start(false).await?;
    let dir = ctx
        .scratch
        .path
        .join(format!("ordering-{round}-{}", mode.keys));
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let config = dir.join("hookline.toml");
    write_config(&config, mode, &sink, ctx)?;
    let requests = Arc::new(requests(ctx, events, mode.keys, round));

    let mut hookline = start(ctx, &data, &config, &dir.join("fill.log")).await?;
    let conns = load::connect_all(hookline.1, ctx.connections).await?;
    let (conns, stats) = load::phase(conns, hookline.1, &requests, 0..events).await;
    drop(conns);
    if stats.failed() > 0 {
        return Err(format!("ordering fill: {} requests failed", stats.failed()));
    }
    hookline.0.signal_term()?;
    sink.state.set_open(true);
    hookline.0.wait_exit(STOP_TIMEOUT).await?;
    let during_fill = sink.state.unique();
    sink.state.reset_clock();

    let mut hookline = start(ctx, &data, &config, &dir.join("drain.log")).await?;
    let deadline = Instant::now() + DRAIN_LIMIT;
    while sink.state.unique() < events {
        if Instant::now() > deadline {
            return Err(format!("ordering drain of {} did not finish", mode.name));
        }
        hookline.0.check_alive()?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    hookline.0.terminate(STOP_TIMEOUT).await?;
    let _ = std::fs::remove_dir_all(&dir);
    let (first, last) = sink.state.window();
    let seconds = match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    let drained = events.saturating_sub(during_fill) as f64;
    Ok(if seconds > 0.0 {
        drained / seconds
    } else {
        0.0
    })
}

/// hookline's configuration file: a forward handler to the sink (default concurrency 32) and
/// the mode's route.
fn write_config(path: &Path, mode: &Mode, sink: &Sink, ctx: &Context) -> Result<(), String> {
    let order = mode
        .order_by
        .map(|field| format!("order_by = \"{field}\"\n"))
        .unwrap_or_default();
    let text = format!(
        "[handlers.sink]\ntype = \"forward\"\nurl = \"http://{}/in\"\nsecret = \"{}\"\n\n\
         [[routes]]\nname = \"sink\"\nhandler = \"sink\"\n{order}",
        sink.addr, ctx.secret
    );
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Signed ChatBrick requests whose bodies carry `data.key`, spread over `keys` keys.
fn requests(ctx: &Context, events: usize, keys: usize, round: usize) -> Vec<Prepared> {
    let timestamp = chrono::Utc::now().timestamp();
    (0..events)
        .map(|n| {
            let id = format!("{}-ord{round}-{keys}-{n}", ctx.nonce);
            let body = Bytes::from(format!(
                r#"{{"type":"bench.ordered","data":{{"key":"k{}","n":{n}}}}}"#,
                n % keys
            ));
            let signature = ctx.shape.signer.sign(&id, timestamp, &body);
            Prepared {
                head: chatbrick_head(&id, timestamp, &signature, body.len()),
                body,
            }
        })
        .collect()
}

/// Starts `hookline serve` with the benchmark's environment and `config`; returns it with its
/// public address once it is ready.
async fn start(
    ctx: &Context,
    data: &Path,
    config: &Path,
    log: &Path,
) -> Result<(ChildProc, std::net::SocketAddr), String> {
    let (public, admin) = (child::free_port()?, child::free_port()?);
    let limit = (ctx.connections * 4).max(1024);
    let mut env = crate::intake::hookline_env(ctx, data, public, admin, None, limit);
    env.push(("HOOKLINE_CONFIG".into(), config.display().to_string()));
    let mut child = ChildProc::spawn(Spawn {
        name: "hookline (ordering)",
        program: &ctx.hookline,
        args: &["serve".to_owned()],
        env: &env,
        core: ctx.server_core,
        log: log.to_path_buf(),
    })?;
    child.wait_ready(public, "/readyz", READY_TIMEOUT).await?;
    Ok((child, public))
}
