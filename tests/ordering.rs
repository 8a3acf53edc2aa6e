//! Ordered routes end to end (docs/ordering.md): interleaved liveDesk conversations, each sent
//! one event after the other, reach a slow sink that fails at random in the order they were
//! acknowledged, per conversation: through a SIGKILL of the real binary on SQLite, and through
//! two replicas on PostgreSQL. A conversation whose head dead-letters waits, the others flow,
//! and skipping it from the admin API lets it go on.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use common::postgres::Cluster;
use common::*;
use hookline::config::{Config, RouteConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How long the sink makes hookline wait when it plays a timeout: past [`ATTEMPT_TIMEOUT`].
const SINK_STALL: Duration = Duration::from_millis(400);
/// hookline's limit on one attempt in these tests.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(250);

/// A conversation and the place of one of its events in it.
type Mark = (u32, u32);

/// A sink that answers slowly and fails at random (503, or no answer before hookline's
/// timeout), from a fixed seed, and always with 500 for the conversations told to fail. It
/// records every event it answers 2xx, in the order it answers them.
#[derive(Clone)]
struct FlakySink {
    addr: SocketAddr,
    rng: Arc<Mutex<StdRng>>,
    /// Every success, in order: (conversation, place).
    successes: Arc<Mutex<Vec<Mark>>>,
    /// Conversations answered 500 every time.
    failing: Arc<Mutex<HashSet<u32>>>,
    /// Whether it also fails at random.
    flaky: bool,
}

impl FlakySink {
    /// Starts a sink that fails at random when `flaky`, else only for the conversations told.
    async fn start(flaky: bool) -> FlakySink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = FlakySink {
            addr: listener.local_addr().unwrap(),
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(18))),
            successes: Arc::default(),
            failing: Arc::default(),
            flaky,
        };
        let app = axum::Router::new()
            .route("/in", post(answer))
            .with_state(sink.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        sink
    }

    fn url(&self) -> String {
        format!("http://{}/in", self.addr)
    }

    /// Per conversation, the places of its events in the order of their first success.
    fn firsts(&self) -> HashMap<u32, Vec<u32>> {
        let mut seen = HashSet::new();
        let mut firsts: HashMap<u32, Vec<u32>> = HashMap::new();
        for &(conversation, place) in self.successes.lock().unwrap().iter() {
            if seen.insert((conversation, place)) {
                firsts.entry(conversation).or_default().push(place);
            }
        }
        firsts
    }
}

/// What the sink does with one request: 500 for a conversation told to fail; when flaky, 15 %
/// 503, 3 % a stall past hookline's timeout, else 200 after up to 5 ms.
async fn answer(State(sink): State<FlakySink>, body: Bytes) -> StatusCode {
    let mark = mark_of(&body).expect("an event of this test");
    if sink.failing.lock().unwrap().contains(&mark.0) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let (roll, pause) = {
        let mut rng = sink.rng.lock().unwrap();
        (rng.gen_range(0..100), rng.gen_range(0..5))
    };
    if !sink.flaky {
        sink.successes.lock().unwrap().push(mark);
        return StatusCode::OK;
    }
    if roll < 15 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if roll < 18 {
        tokio::time::sleep(SINK_STALL).await;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    tokio::time::sleep(Duration::from_millis(pause)).await;
    sink.successes.lock().unwrap().push(mark);
    StatusCode::OK
}

/// The `ord:<conversation>:<place>` marker an event of this test carries in its text.
fn mark_of(body: &[u8]) -> Option<Mark> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("ord:")? + 4;
    let rest = &text[start..];
    let end = rest.find('"')?;
    let (conversation, place) = rest[..end].split_once(':')?;
    Some((conversation.parse().ok()?, place.parse().ok()?))
}

/// liveDesk's `message_created` in `conversation`, the `place`-th of it.
fn message(conversation: u32, place: u32) -> Vec<u8> {
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("livedesk/message_created.api_channel_doc.json")).unwrap();
    body["id"] = (conversation * 1000 + place).into();
    body["content"] = format!("ord:{conversation}:{place}").into();
    body["conversation"]["id"] = conversation.into();
    body.to_string().into_bytes()
}

/// Where the senders post: the replicas (or the one process) running now.
type Targets = Arc<Mutex<Vec<SocketAddr>>>;

/// Sends `places` events of each of `conversations` conversations, every conversation at once
/// and each one's events one after the other: the next only once the previous was
/// acknowledged, retrying what is not (a 503, a process killed mid-request) with the same
/// delivery id. Event `place` goes to target `place % targets`. Returns how many were
/// acknowledged, counted as they are.
fn send_all(
    conversations: u32,
    places: u32,
    targets: Targets,
    acked: Arc<AtomicUsize>,
) -> tokio::task::JoinSet<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut senders = tokio::task::JoinSet::new();
    for conversation in 0..conversations {
        let (client, targets, acked) = (client.clone(), targets.clone(), acked.clone());
        senders.spawn(async move {
            for place in 0..places {
                let body = message(conversation, place);
                let id = format!("ord-{conversation}-{place}");
                loop {
                    let target = {
                        let targets = targets.lock().unwrap();
                        targets[place as usize % targets.len()]
                    };
                    let headers = [("x-chatwoot-delivery".to_string(), id.clone())];
                    let sent = client
                        .post(url(target, &format!("/webhooks/livedesk/{TOKEN}")))
                        .headers(
                            headers
                                .iter()
                                .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                                .collect(),
                        )
                        .body(body.clone())
                        .send()
                        .await;
                    if sent.is_ok_and(|r| r.status().is_success()) {
                        acked.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
    }
    senders
}

/// Waits until the sink saw a success of every event, then checks that each conversation's
/// first successes came in the order its events were acknowledged.
async fn assert_in_order(sink: &FlakySink, conversations: u32, places: u32, within: Duration) {
    let total = (conversations * places) as usize;
    let firsts = eventually(within, || async {
        let firsts = sink.firsts();
        (firsts.values().map(Vec::len).sum::<usize>() == total).then_some(firsts)
    })
    .await;
    let expected: Vec<u32> = (0..places).collect();
    for conversation in 0..conversations {
        assert_eq!(
            firsts[&conversation], expected,
            "conversation {conversation}: first successes out of order"
        );
    }
}

/// The configuration file of the binary: one ordered route to `sink`, fast retries.
fn ordered_config_file(path: &Path, sink: &FlakySink) {
    let text = format!(
        r#"
[delivery]
initial_backoff = "10ms"
max_backoff = "100ms"
timeout = "{timeout}ms"
max_attempts = 1000
shutdown_grace = "1s"

[handlers.crm]
type = "forward"
url = "{url}"
secret = "{FORWARD_SECRET}"
timeout = "{timeout}ms"
concurrency = 16

[[routes]]
name = "crm"
handler = "crm"
source = "livedesk"
order_by = "conversation"
"#,
        url = sink.url(),
        timeout = ATTEMPT_TIMEOUT.as_millis(),
    );
    std::fs::write(path, text).unwrap();
}

/// The same, for a server started in this process.
fn ordered_config(dir: &Path, sink: &FlakySink) -> Config {
    let mut config = config(dir);
    config.delivery.initial_backoff = Duration::from_millis(10);
    config.delivery.max_backoff = Duration::from_millis(100);
    config.delivery.timeout = ATTEMPT_TIMEOUT;
    config.handlers.insert(
        "crm".into(),
        hookline::config::HandlerConfig::Forward {
            url: sink.url(),
            secret: FORWARD_SECRET.into(),
            format: Default::default(),
            timeout: ATTEMPT_TIMEOUT,
            retry_client_errors: false,
            concurrency: 16,
        },
    );
    let mut route = RouteConfig::everything("crm");
    route.source = Some("livedesk".into());
    route.order_by = Some("conversation".into());
    config.routes = vec![route];
    config
}

/// 200 conversations of 5 events through the real binary on SQLite, killed with SIGKILL once
/// half the events are acknowledged and started again: every conversation's first successes
/// are in acknowledgement order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_conversation_arrives_in_order_through_a_flaky_sink_and_a_sigkill() {
    let sink = FlakySink::start(true).await;
    let dir = tempfile::tempdir().unwrap();
    let (data, file) = (dir.path().join("data"), dir.path().join("hookline.toml"));
    ordered_config_file(&file, &sink);
    let spawn = |log: &str| {
        let log = dir.path().join(log);
        let mut command = hookline_command(&data, &log);
        command.env("HOOKLINE_CONFIG", &file);
        async move { spawn_hookline(command, &log).await }
    };
    let mut process = spawn("first.log").await;
    let (conversations, places) = (200, 5);
    let targets: Targets = Arc::new(Mutex::new(vec![process.public]));
    let acked = Arc::new(AtomicUsize::new(0));
    let mut senders = send_all(conversations, places, targets.clone(), acked.clone());
    let half = (conversations * places / 2) as usize;
    eventually(Duration::from_secs(60), || async {
        (acked.load(Ordering::SeqCst) >= half).then_some(())
    })
    .await;
    process.child.kill().unwrap(); // SIGKILL
    process.child.wait().unwrap();
    let process = spawn("second.log").await;
    *targets.lock().unwrap() = vec![process.public];
    while senders.join_next().await.is_some() {}
    assert_in_order(&sink, conversations, places, Duration::from_secs(60)).await;
}

/// Two replicas on one PostgreSQL database, each event of a conversation sent to the other
/// replica than the one before: every conversation's first successes are in acknowledgement
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_conversation_arrives_in_order_through_two_postgres_replicas() {
    let cluster = Cluster::shared();
    let database_url = cluster.url(&cluster.database());
    let sink = FlakySink::start(true).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let replica = |dir: &Path| {
        let mut config = ordered_config(dir, &sink);
        config.store.url = Some(database_url.parse().unwrap());
        start(config)
    };
    let (a, b) = (replica(dir_a.path()).await, replica(dir_b.path()).await);
    let (conversations, places) = (200, 4);
    let targets: Targets = Arc::new(Mutex::new(vec![a.public_addr(), b.public_addr()]));
    let mut senders = send_all(conversations, places, targets, Arc::default());
    while senders.join_next().await.is_some() {}
    assert_in_order(&sink, conversations, places, Duration::from_secs(60)).await;
}

/// A conversation whose first event dead-letters is blocked: the admin API lists it with what
/// waits behind it, `/metrics` counts it, the other conversations are all delivered meanwhile;
/// skipping it lets the rest of it go, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_conversation_waits_alone_until_skipped() {
    let sink = FlakySink::start(false).await;
    let blocked = 7;
    sink.failing.lock().unwrap().insert(blocked);
    let dir = tempfile::tempdir().unwrap();
    let mut config = ordered_config(dir.path(), &sink);
    config.delivery.max_attempts = 2;
    let server = start(config).await;
    let (conversations, places) = (20, 4);
    let targets: Targets = Arc::new(Mutex::new(vec![server.public_addr()]));
    let mut senders = send_all(conversations, places, targets, Arc::default());
    while senders.join_next().await.is_some() {}

    let client = reqwest::Client::new();
    let listed = eventually(Duration::from_secs(30), || async {
        let listed = admin_get(&client, &server, "/api/blocked").await;
        (listed["blocked"][0]["waiting"] == places - 1).then_some(listed)
    })
    .await;
    let key = &listed["blocked"][0];
    assert_eq!(listed["blocked"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        (key["route"].as_str(), key["key"].as_str()),
        (Some("crm"), Some("7"))
    );
    let others = eventually(Duration::from_secs(30), || async {
        let firsts = sink.firsts();
        let done = (0..conversations)
            .filter(|c| *c != blocked)
            .all(|c| firsts.get(&c).is_some_and(|p| p.len() == places as usize));
        done.then_some(firsts)
    })
    .await;
    assert!(!others.contains_key(&blocked), "nothing of the blocked one");
    let metrics = client
        .get(url(server.admin_addr(), "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"hookline_ordered_blocked_keys{route="crm"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"hookline_ordered_oldest_held_back_age_seconds{route="crm"}"#));

    sink.failing.lock().unwrap().clear();
    let skip = format!("/api/blocked/{}/skip", key["head"]);
    let skipped = client
        .post(url(server.admin_addr(), &skip))
        .send()
        .await
        .unwrap();
    assert_eq!(skipped.status(), 200);
    let rest = eventually(Duration::from_secs(30), || async {
        let firsts = sink.firsts();
        let rest = firsts.get(&blocked).cloned().unwrap_or_default();
        (rest.len() == places as usize - 1).then_some(rest)
    })
    .await;
    assert_eq!(rest, (1..places).collect::<Vec<_>>(), "the rest, in order");
    let listed = admin_get(&client, &server, "/api/blocked").await;
    assert_eq!(listed["blocked"], serde_json::json!([]));
    let again = client
        .post(url(server.admin_addr(), &skip))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404, "its key is no longer held back");
}
