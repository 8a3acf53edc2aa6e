//! Shared test support: start hookline on loopback port 0, sign requests like the providers do,
//! and run a recording HTTP sink that stands in for a brand's service.

#![allow(dead_code)]

pub mod postgres;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hookline::config::Config;
use hookline::server::{Server, ServerBuilder};
use hookline::signature::{Key, Signer};

/// The demo ChatBrick secret (docs/providers.md, "Test vectors"; never for production).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// A second ChatBrick secret, for rotation tests.
pub const SECRET_2: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
/// The liveDesk URL token used in tests.
pub const TOKEN: &str = "test-token-0123456789abcdef";
/// The secret hookline signs forwarded requests with.
pub const FORWARD_SECRET: &str = "whsec_dGhpcyBpcyB0aGUgZm9yd2FyZCBzZWNyZXQ=";

/// A configuration for tests: loopback port 0 for both listeners, data in `dir`, ChatBrick and
/// liveDesk on.
pub fn config(dir: &Path) -> Config {
    let mut env = HashMap::new();
    env.insert("HOOKLINE_LISTEN".to_string(), "127.0.0.1:0".to_string());
    env.insert(
        "HOOKLINE_ADMIN_LISTEN".to_string(),
        "127.0.0.1:0".to_string(),
    );
    env.insert("HOOKLINE_DATA_DIR".to_string(), dir.display().to_string());
    env.insert("HOOKLINE_CHATBRICK_SECRET".to_string(), SECRET.to_string());
    env.insert("HOOKLINE_LIVEDESK_TOKEN".to_string(), TOKEN.to_string());
    Config::load(None, &env).expect("test config")
}

/// A forward handler to `sink`, signed with [`FORWARD_SECRET`].
pub fn forward_to(sink: &Sink, concurrency: usize) -> hookline::config::HandlerConfig {
    hookline::config::HandlerConfig::Forward {
        url: sink.url(),
        secret: FORWARD_SECRET.into(),
        format: Default::default(),
        timeout: Duration::from_secs(5),
        retry_client_errors: false,
        concurrency,
    }
}

/// Polls `/readyz` until it answers 200.
pub async fn wait_ready(client: &reqwest::Client, addr: SocketAddr, within: Duration) {
    eventually(within, || {
        let client = client.clone();
        let target = url(addr, "/readyz");
        async move {
            let r = client.get(target).send().await.ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await
}

/// POSTs to an admin API path and returns its JSON.
pub async fn admin_post(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
) -> serde_json::Value {
    admin_json(client.post(url(server.admin_addr(), path))).await
}

/// Starts hookline in this process.
pub async fn start(config: Config) -> Server {
    ServerBuilder::new(config)
        .start()
        .await
        .expect("server starts")
}

/// `http://addr`.
pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// Signs `body` as Svix does for ChatBrick, with a given id and timestamp.
pub fn svix_headers(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
    let key: Key = secret.parse().expect("key");
    let signature = Signer::new(key).expect("signer").sign(id, timestamp, body);
    vec![
        ("svix-id".into(), id.into()),
        ("svix-timestamp".into(), timestamp.to_string()),
        ("svix-signature".into(), signature),
    ]
}

/// Now, in unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Posts a body with headers; returns status, headers and the body as JSON (or Null).
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    body: impl Into<reqwest::Body>,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let mut request = client.post(url).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.body(body).send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// Sends a signed ChatBrick request with a fresh id; returns status and JSON body.
pub async fn send_chatbrick(
    client: &reqwest::Client,
    addr: SocketAddr,
    id: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let headers = svix_headers(SECRET, id, now(), body);
    let (status, _, json) = post_json(
        client,
        &url(addr, "/webhooks/chatbrick"),
        &headers,
        body.to_vec(),
    )
    .await;
    (status, json)
}

/// Reads a fixture file.
pub fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(path),
    )
    .expect("fixture exists")
}

/// A request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
    /// When its answer was decided.
    pub at: std::time::Instant,
}

/// A local HTTP server that records every request and answers with a status the test controls.
#[derive(Clone)]
pub struct Sink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Everything received, in order.
    pub received: Arc<Mutex<Vec<Received>>>,
    /// The status it answers with now.
    pub status: Arc<Mutex<u16>>,
    /// How long it takes to answer.
    pub delay: Arc<Mutex<Duration>>,
    /// Requests it is answering right now.
    pub answering: Arc<AtomicUsize>,
}

impl Sink {
    /// Starts a sink on loopback answering 200.
    pub async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = Sink {
            addr: listener.local_addr().unwrap(),
            received: Arc::default(),
            status: Arc::new(Mutex::new(200)),
            delay: Arc::default(),
            answering: Arc::default(),
        };
        let app = Router::new()
            .route("/in", post(record))
            .with_state(sink.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        sink
    }

    /// The URL hookline forwards to.
    pub fn url(&self) -> String {
        format!("http://{}/in", self.addr)
    }

    /// Sets the status it answers with.
    pub fn answer(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    /// Makes it take `delay` before each answer.
    pub fn slow_down(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until it has received at least `n` requests with a 2xx answer window, or panics.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("sink got {} of {n} requests within {within:?}", got.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn record(State(sink): State<Sink>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let delay = *sink.delay.lock().unwrap();
    sink.answering.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(delay).await;
    sink.answering.fetch_sub(1, Ordering::SeqCst);
    let status = *sink.status.lock().unwrap();
    if (200..300).contains(&status) {
        sink.received.lock().unwrap().push(Received {
            headers,
            body,
            at: std::time::Instant::now(),
        });
    }
    StatusCode::from_u16(status).unwrap()
}

/// Polls `check` until it returns `Some`, or panics after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("condition not met within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// GETs an admin API path and returns its JSON.
pub async fn admin_get(client: &reqwest::Client, server: &Server, path: &str) -> serde_json::Value {
    admin_json(client.get(url(server.admin_addr(), path))).await
}

/// Sends an admin request and returns its JSON.
async fn admin_json(request: reqwest::RequestBuilder) -> serde_json::Value {
    request
        .send()
        .await
        .expect("admin request")
        .json()
        .await
        .expect("admin json")
}

/// The `hookline serve` binary configured by environment only, as operators run it: both
/// listeners on loopback port 0 (see [`started_addresses`]), data in `data`, both sources on,
/// output to `log`. Callers add or override variables with `.env`.
pub fn hookline_command(data: &Path, log: &Path) -> std::process::Command {
    let file = std::fs::File::create(log).expect("log file");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"));
    command
        .arg("serve")
        .env_clear()
        .env("HOOKLINE_LISTEN", "127.0.0.1:0")
        .env("HOOKLINE_ADMIN_LISTEN", "127.0.0.1:0")
        .env("HOOKLINE_DATA_DIR", data)
        .env("HOOKLINE_CHATBRICK_SECRET", SECRET)
        .env("HOOKLINE_LIVEDESK_TOKEN", TOKEN)
        .env("HOOKLINE_LOG", "warn,hookline::startup=info")
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file);
    command
}

/// A running `hookline` binary and the addresses it bound; killed when dropped, if it still
/// runs.
pub struct Process {
    /// The process.
    pub child: std::process::Child,
    /// Its public listener.
    pub public: SocketAddr,
    /// Its admin listener.
    pub admin: SocketAddr,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` (from [`hookline_command`], which logs to `log`), reads the addresses it
/// bound from its "hookline started" line (so no other test can take them in between), and
/// waits until it is ready; panics with its log if it exits first.
pub async fn spawn_hookline(mut command: std::process::Command, log: &Path) -> Process {
    let mut child = command.spawn().expect("hookline binary starts");
    let (public, admin) = eventually(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!("hookline exited ({status}):\n{text}");
        }
        async move { started_addresses(&text) }
    })
    .await;
    wait_ready(&reqwest::Client::new(), public, Duration::from_secs(20)).await;
    Process {
        child,
        public,
        admin,
    }
}

/// The public and admin addresses of hookline's "hookline started" log line, text or JSON:
/// listening on port 0 and reading the ports back means parallel tests never collide.
pub fn started_addresses(log: &str) -> Option<(SocketAddr, SocketAddr)> {
    let line = log.lines().find(|l| l.contains("hookline started"))?;
    let value = |key: &str| -> Option<SocketAddr> {
        let start = line
            .find(&format!("{key}="))
            .map(|i| i + key.len() + 1)
            .or_else(|| {
                line.find(&format!("\"{key}\":\""))
                    .map(|i| i + key.len() + 4)
            })?;
        let rest = &line[start..];
        let end = rest
            .find(|c: char| c == '"' || c.is_whitespace())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    };
    Some((value("listen")?, value("admin")?))
}

/// A free loopback port (bound and released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A JSON value read by a parser that refuses an object with the same key twice (serde_json keeps
/// the last and drops the other, as most log shippers do: a duplicate key loses data).
pub struct StrictJson(pub serde_json::Value);

impl<'de> serde::Deserialize<'de> for StrictJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictJson)
    }
}

/// Builds a `serde_json::Value`, failing on a repeated object key.
struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON without duplicate keys")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictJson(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items.into())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictJson(value) = map.next_value()?;
            if object.insert(key.clone(), value).is_some() {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
        }
        Ok(object.into())
    }
}

/// Every complete line of a JSON log file written by a running process (a last line still being
/// written is left out), each parsed strictly as [`strict_json_lines`] does.
pub fn strict_json_log(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("log file");
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    strict_json_lines(complete)
}

/// Every line of a JSON log, each parsed strictly (no duplicate keys, one object per line);
/// panics naming the first line that is not.
pub fn strict_json_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| match serde_json::from_str::<StrictJson>(line) {
            Ok(StrictJson(value)) if value.is_object() => value,
            Ok(_) => panic!("a log line that is not a JSON object: {line}"),
            Err(e) => panic!("{e} in log line: {line}"),
        })
        .collect()
}

/// The admin token of the tests that log in to the inspector.
pub const ADMIN_TOKEN: &str = "inspector-test-token-5b1f";

/// [`config`] with the admin token [`ADMIN_TOKEN`]: the inspector needs a login.
pub fn config_with_token(dir: &Path) -> Config {
    let mut config = config(dir);
    config.admin.token = Some(ADMIN_TOKEN.into());
    config
}

/// Sends a liveDesk request with this delivery id; returns status and JSON body.
pub async fn send_livedesk(
    client: &reqwest::Client,
    addr: SocketAddr,
    delivery_id: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let headers = [("x-chatwoot-delivery".to_string(), delivery_id.to_string())];
    let target = url(addr, &format!("/webhooks/livedesk/{TOKEN}"));
    let (status, _, json) = post_json(client, &target, &headers, body.to_vec()).await;
    (status, json)
}

/// liveDesk's `message_created` example with the contact's and the sender's name set to
/// `name`, the text to `content`, and the contact's id to `contact_id`.
pub fn livedesk_message(name: &str, content: &str, contact_id: i64) -> Vec<u8> {
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("livedesk/message_created.api_channel_doc.json"))
            .expect("fixture is JSON");
    body["content"] = content.into();
    body["sender"] = serde_json::json!({ "id": contact_id, "name": name, "type": "contact" });
    body["contact_id"] = contact_id.into();
    body["conversation"]["meta"]["sender"]["name"] = name.into();
    body["conversation"]["meta"]["sender"]["id"] = contact_id.into();
    body.to_string().into_bytes()
}

/// Every event id in the inbox, as the admin API at `admin` lists them, page by page (newest
/// first, each page before the last one's `seq`); `token` is the admin token, if any.
pub async fn listed_event_ids(admin: SocketAddr, token: Option<&str>) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let mut path = "/api/events?limit=1000".to_owned();
        if let Some(seq) = before {
            path.push_str(&format!("&before={seq}"));
        }
        let mut request = client.get(url(admin, &path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let page: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
        let events = page["events"].as_array().expect("a page of events");
        if events.is_empty() {
            return ids;
        }
        ids.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        before = events.last().unwrap()["seq"].as_i64();
    }
}
