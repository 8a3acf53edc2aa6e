//! The inspector run (`--inspector-events N`): how fast the inspector's pages answer on a large
//! inbox. It fills a scratch inbox with N events the way intake stores them (both providers,
//! contacts and conversations, some undecodable, some dead letters, received over the last
//! day), starts hookline on it, and times each page over HTTP on a fresh connection, as a
//! browser's first request would meet it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use hookline::store::{DeliveryStart, NewDelivery, NextStep, SqliteStore, Store, SuccessRecord};
use hookline::{chatbrick, livedesk, Envelope};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::child::{self, ChildProc, Spawn};
use crate::context::Context;

/// Inserts in flight while filling, so that the writer commits them in large batches.
const IN_FLIGHT: usize = 512;
/// One event in this many has a dead delivery.
const DEAD_EVERY: usize = 500;
/// One event in this many does not decode.
const UNDECODABLE_EVERY: usize = 1000;
/// Distinct contacts (and conversations) the events are about.
const CONTACTS: usize = 50_000;
/// Timed requests per page, after [`WARM_UP`] untimed ones.
const SAMPLES: usize = 20;
/// Untimed requests per page first.
const WARM_UP: usize = 3;
/// The route and handler of every delivery.
const ROUTE: &str = "crm";

/// What the run measured.
#[derive(Debug, Serialize)]
pub struct InspectorResult {
    /// Events in the inbox.
    pub events: usize,
    /// Seconds the fill took.
    pub fill_seconds: f64,
    /// The inbox's size on disk (database and WAL), in bytes.
    pub db_bytes: u64,
    /// Every page timed.
    pub pages: Vec<PageTiming>,
}

/// One page's timings.
#[derive(Debug, Serialize)]
pub struct PageTiming {
    /// What it is.
    pub name: &'static str,
    /// Its path and query.
    pub path: String,
    /// Its HTTP status.
    pub status: u16,
    /// Its size in bytes.
    pub bytes: usize,
    /// Median time to the whole response, in milliseconds.
    pub p50_ms: f64,
    /// Slowest of the timed requests, in milliseconds.
    pub max_ms: f64,
}

/// Fills an inbox of `events`, serves it, and times the pages.
pub async fn run(ctx: &Context, events: usize) -> Result<InspectorResult, String> {
    let data = ctx.scratch.path.join("inspector");
    let started = Instant::now();
    let sample = fill(&data, events).await?;
    let fill_seconds = started.elapsed().as_secs_f64();
    let db = SqliteStore::db_path(&data);
    let wal = db.with_extension("db-wal");
    let db_bytes = [db, wal]
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    crate::progress(&format!(
        "inspector: {events} events stored in {fill_seconds:.0} s; timing the pages"
    ));
    let admin = child::free_port()?;
    let mut server = serve(ctx, &data, admin).await?;
    let mut pages = Vec::new();
    for (name, path) in sample.pages(events) {
        pages.push(time_page(admin, name, path).await?);
    }
    server.terminate(Duration::from_secs(30)).await?;
    Ok(InspectorResult {
        events,
        fill_seconds: round(fill_seconds),
        db_bytes,
        pages,
    })
}

/// Ids of stored events that the timed pages look up.
struct Sample {
    /// hookline's id of an event in the middle of the inbox.
    event_id: String,
    /// Its provider id.
    provider_id: String,
    /// A contact id some events are about.
    contact: String,
    /// A conversation id some events are about.
    conversation: String,
    /// When the oldest event was received.
    first: DateTime<Utc>,
}

impl Sample {
    /// The pages to time, by name.
    fn pages(&self, events: usize) -> Vec<(&'static str, String)> {
        let hour = |h: i64| {
            (self.first + TimeDelta::hours(h))
                .format("%Y-%m-%dT%H:%M")
                .to_string()
        };
        vec![
            ("list (newest 50)", "/events".into()),
            (
                "list, a page deep in the inbox",
                format!("/events?before={}", events / 2),
            ),
            (
                "filtered: source and type",
                "/events?source=livedesk&type=message_created".into(),
            ),
            (
                "filtered: one hour, 12 h ago",
                format!("/events?since={}&until={}", hour(11), hour(12)),
            ),
            ("filtered: status dead", "/events?status=dead".into()),
            (
                "filtered: status undecodable",
                "/events?status=undecodable".into(),
            ),
            ("lookup: event id", format!("/events?q={}", self.event_id)),
            (
                "lookup: provider id",
                format!("/events?q={}", self.provider_id),
            ),
            ("lookup: contact id", format!("/events?q={}", self.contact)),
            (
                "lookup: conversation id",
                format!("/events?q={}", self.conversation),
            ),
            ("event page", format!("/events/{}", self.event_id)),
            (
                "new events since a cursor",
                format!("/events/new?after={}", events.saturating_sub(10)),
            ),
            ("overview", "/".into()),
            ("dead letters", "/dead-letters".into()),
        ]
    }
}

/// The `i`th event of the fill: ChatBrick connections and store updates, liveDesk messages,
/// every [`UNDECODABLE_EVERY`]th undecodable.
fn event(i: usize, received_at: DateTime<Utc>) -> Envelope {
    let contact = i % CONTACTS;
    let (source, provider_id, body) = if i % UNDECODABLE_EVERY == UNDECODABLE_EVERY - 1 {
        let body = r#"{"type":"contact.connection.connected","data":{"contact":{"name":"no id"}}}"#;
        (chatbrick::SOURCE, format!("msg_bench_{i}"), body.to_owned())
    } else if i % 5 < 3 {
        let body = match i % 3 {
            0 => format!(
                r#"{{"type":"store.updated","data":{{"store":{{"id":"st_{}","name":"Store {}","externalId":"{}"}},"timestamps":{{"updatedAt":"2026-01-01T00:00:00.000Z"}}}}}}"#,
                i % 300,
                i % 300,
                i % 300
            ),
            _ => format!(
                r#"{{"type":"contact.connection.connected","data":{{"contact":{{"id":"ct_{contact}","name":"Customer {contact}"}},"lineUsers":[{{"id":"lu_{contact}","name":"LINE {contact}","lineUid":"U{contact:032x}","lineProviderId":"1660894172"}}],"connectedStore":{{"id":"st_{}","name":"Store"}},"timestamps":{{"connectedAt":"2026-01-01T00:00:00.000Z"}}}}}}"#,
                i % 300
            ),
        };
        (chatbrick::SOURCE, format!("msg_bench_{i}"), body)
    } else {
        let body = format!(
            r#"{{"id":{i},"content":"Hello, message {i}","content_type":"text","message_type":"incoming","private":false,"sender":{{"id":{contact},"name":"Contact {contact}","type":"contact"}},"contact_id":{contact},"conversation":{{"id":{},"status":"open","inbox_id":523,"meta":{{"sender":{{"id":{contact},"name":"Contact {contact}"}}}}}},"event":"message_created"}}"#,
            100_000 + contact
        );
        (livedesk::SOURCE, format!("ld-bench-{i}"), body)
    };
    Envelope::decode(
        source,
        "default",
        provider_id,
        received_at,
        Bytes::from(body),
    )
}

/// Stores `events` events received over the last ~23 hours, oldest first, each with one
/// delivery done at intake, except every [`DEAD_EVERY`]th, whose delivery is made dead.
async fn fill(dir: &Path, events: usize) -> Result<Sample, String> {
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir, hookline::store::Synchronous::Normal, 0)
            .map_err(|e| e.to_string())?,
    );
    let now = Utc::now();
    let spacing = TimeDelta::hours(23) / i32::try_from(events.max(1)).unwrap_or(i32::MAX);
    let first = now - spacing * i32::try_from(events).unwrap_or(i32::MAX);
    let mut tasks = JoinSet::new();
    for i in 0..events {
        if tasks.len() >= IN_FLIGHT {
            if let Some(done) = tasks.join_next().await {
                done.map_err(|e| e.to_string())??;
            }
        }
        let store = store.clone();
        let received_at = first + spacing * i as i32;
        tasks.spawn(async move {
            let envelope = event(i, received_at);
            let start = if i % DEAD_EVERY == 7 {
                DeliveryStart::Pending
            } else {
                DeliveryStart::Delivered(SuccessRecord {
                    started_at: received_at,
                    duration: Duration::from_millis(3),
                })
            };
            let delivery = NewDelivery {
                route: ROUTE.into(),
                handler: ROUTE.into(),
                start,
                order: None,
            };
            store
                .insert(&envelope, vec![delivery])
                .await
                .map(|_| ())
                .map_err(|e| format!("fill: {e}"))
        });
        if i % 100_000 == 0 && i > 0 {
            crate::progress(&format!("inspector: {i} events stored"));
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    kill_pending(&*store).await?;
    // A liveDesk message (i % 5 == 3) from the middle of the inbox.
    let middle = events / 2;
    let sample_event = event(middle - middle % 5 + 3, first);
    Ok(Sample {
        event_id: sample_event.id.clone(),
        provider_id: sample_event.provider_id.clone(),
        contact: format!("ct_{}", 1234 % CONTACTS),
        conversation: (100_000 + 1234 % CONTACTS).to_string(),
        first,
    })
}

/// Makes every pending delivery of the fill a dead letter, as a sink answering 400 would.
async fn kill_pending(store: &dyn Store) -> Result<(), String> {
    loop {
        let claimed = store
            .claim(ROUTE, 1000, Duration::from_secs(60))
            .await
            .map_err(|e| e.to_string())?;
        if claimed.is_empty() {
            return Ok(());
        }
        for delivery in claimed {
            let attempt = hookline::store::AttemptRecord {
                started_at: Utc::now(),
                duration: Duration::from_millis(12),
                http_status: Some(400),
                error: Some("HTTP 400 Bad Request".into()),
            };
            store
                .finish(delivery.delivery_id, attempt, NextStep::Dead)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
}

/// Starts `hookline serve` on the filled inbox, its admin listener (no token: loopback, the
/// inspector open) on `admin`.
async fn serve(ctx: &Context, data: &Path, admin: SocketAddr) -> Result<ChildProc, String> {
    let public = child::free_port()?;
    let env: Vec<(String, String)> = [
        ("HOOKLINE_DATA_DIR", data.display().to_string()),
        ("HOOKLINE_LOG", "warn".into()),
        ("HOOKLINE_LISTEN", public.to_string()),
        ("HOOKLINE_ADMIN_LISTEN", admin.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut child = ChildProc::spawn(Spawn {
        name: "hookline",
        program: &ctx.hookline,
        args: &["serve".to_owned()],
        env: &env,
        core: ctx.server_core,
        log: ctx.scratch.path.join("hookline-inspector.log"),
    })?;
    child
        .wait_ready(public, "/readyz", Duration::from_secs(60))
        .await?;
    Ok(child)
}

/// Times one page: [`WARM_UP`] requests, then [`SAMPLES`] timed ones.
async fn time_page(
    admin: SocketAddr,
    name: &'static str,
    path: String,
) -> Result<PageTiming, String> {
    let mut times = Vec::with_capacity(SAMPLES);
    let mut last = (0, 0);
    for n in 0..WARM_UP + SAMPLES {
        let started = Instant::now();
        last = fetch(admin, &path).await?;
        if n >= WARM_UP {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(PageTiming {
        name,
        path,
        status: last.0,
        bytes: last.1,
        p50_ms: round(times[times.len() / 2]),
        max_ms: round(times[times.len() - 1]),
    })
}

/// One GET on a fresh connection: status and body size.
async fn fetch(addr: SocketAddr, path: &str) -> Result<(u16, usize), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(30), sender.send_request(request))
        .await
        .map_err(|_| format!("GET {path} timed out"))?
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status >= 400 {
        return Err(format!(
            "GET {path}: {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok((status, body.len()))
}

/// Three decimals.
fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Prints the timings as a table.
pub fn print(result: &InspectorResult) {
    println!();
    println!(
        "inspector on {} events ({:.0} MB inbox, filled in {:.0} s); each page {SAMPLES} times on a fresh connection:",
        result.events,
        result.db_bytes as f64 / 1e6,
        result.fill_seconds
    );
    println!(
        "{:<34} {:>6} {:>9} {:>9} {:>9}",
        "page", "status", "KB", "p50 ms", "max ms"
    );
    for page in &result.pages {
        println!(
            "{:<34} {:>6} {:>9.1} {:>9.2} {:>9.2}",
            page.name,
            page.status,
            page.bytes as f64 / 1024.0,
            page.p50_ms,
            page.max_ms
        );
    }
}
