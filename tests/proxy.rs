//! hookline behind a real nginx on loopback, configured with the `location /webhooks/` block and
//! the maps of `deploy/nginx.conf` (what operators copy): signed webhooks for every documented
//! event go through it with `hookline send`, the client address is resolved from
//! `X-Forwarded-For` only when the proxy is trusted, oversized bodies get 413, a slow sender does
//! not hold up the others, and `/metrics` counts what happened.
//!
//! nginx must be installed (`.ci/install-deps`, which `.ci/run` calls, does it): without it these
//! tests fail rather than skip, because a skipped proxy test looks exactly like a passing one.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use hookline::send::EXAMPLES;

/// The nginx configuration operators copy; its proxy settings are the ones under test.
const DEPLOY_NGINX: &str = include_str!("../deploy/nginx.conf");

/// hookline's body limit in these tests: below nginx's `client_max_body_size 1m`, so that one
/// size of body is refused by hookline behind nginx and a larger one by nginx itself.
const HOOKLINE_BODY_LIMIT: usize = 64 * 1024;

/// The nginx executable, or a failure that says how to get one.
fn nginx_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(
        ["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"]
            .iter()
            .map(PathBuf::from),
    );
    for dir in dirs {
        let candidate = dir.join("nginx");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "nginx is not installed, and tests/proxy.rs runs a real nginx in front of hookline. \
         `.ci/run` installs it with `.ci/install-deps` (apt-get install nginx): run that script, \
         or install nginx yourself"
    );
}

/// Splits nginx configuration text into its top-level items (statements and blocks), comments
/// dropped; quoted strings may contain braces and semicolons.
fn nginx_items(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            current.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '#' => {
                // A comment runs to the end of the line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                current.push('\n');
                continue;
            }
            '"' | '\'' => quote = Some(c),
            '{' => depth += 1,
            '}' => depth = depth.checked_sub(1).expect("balanced braces in nginx.conf"),
            _ => {}
        }
        current.push(c);
        if depth == 0 && (c == ';' || c == '}') {
            items.push(current.trim().to_owned());
            current.clear();
        }
    }
    assert!(
        depth == 0 && current.trim().is_empty(),
        "nginx.conf ends early"
    );
    items
}

/// The text between a block's outer braces.
fn block_body(item: &str) -> &str {
    let open = item.find('{').expect("a block");
    let close = item.rfind('}').expect("a block");
    &item[open + 1..close]
}

/// From `deploy/nginx.conf`: the http-level `map` and `log_format` items, and the
/// `location /webhooks/` block of the TLS server.
fn deploy_nginx_parts() -> (String, String) {
    let items = nginx_items(DEPLOY_NGINX);
    let http_level: Vec<&str> = items
        .iter()
        .map(String::as_str)
        .filter(|item| item.starts_with("map ") || item.starts_with("log_format "))
        .collect();
    let server = items
        .iter()
        .find(|item| item.starts_with("server") && item.contains("listen 443"))
        .expect("deploy/nginx.conf has a server block listening on 443");
    let location = nginx_items(block_body(server))
        .into_iter()
        .find(|item| item.starts_with("location /webhooks/"))
        .expect("deploy/nginx.conf has a `location /webhooks/` block");
    for needed in [
        "client_max_body_size 1m;",
        "proxy_request_buffering on;",
        "proxy_pass http://hookline;",
        "X-Forwarded-For $proxy_add_x_forwarded_for;",
        "X-Request-Id $hookline_request_id;",
    ] {
        assert!(
            location.contains(needed),
            "deploy/nginx.conf's location /webhooks/ lacks `{needed}`:\n{location}"
        );
    }
    (http_level.join("\n"), location)
}

/// A child process that is stopped when the test ends, however it ends.
struct Guard {
    /// The process.
    child: Child,
    /// What it is, for messages.
    name: &'static str,
    /// Where its output goes, shown when it dies early.
    log: PathBuf,
}

impl Guard {
    /// Panics with the process's log if it has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("{} exited ({status}):\n{log}", self.name);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Each child leads its own process group (see `spawn`): signalling the group reaches
        // nginx's workers too, even if the master is gone. SIGTERM first, then SIGKILL.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// Starts `command` as the leader of a new process group, so that [`Guard`] can stop it with
/// everything it started.
fn spawn(command: &mut Command, name: &'static str, log: PathBuf) -> Guard {
    let child = command
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} starts: {e}"));
    Guard { child, name, log }
}

/// hookline and nginx in front of it, all on loopback, in one temporary directory.
struct Stack {
    /// nginx's listener: where senders post.
    proxy: SocketAddr,
    /// hookline's public listener (behind nginx).
    public: SocketAddr,
    /// hookline's admin listener (`/metrics`).
    admin: SocketAddr,
    /// hookline's JSON log.
    log: PathBuf,
    /// nginx, stopped first.
    _nginx: Guard,
    /// hookline.
    _hookline: Guard,
    /// Data, logs and nginx's files; removed last.
    dir: tempfile::TempDir,
}

impl Stack {
    /// Starts hookline (trusting 127.0.0.1 as a proxy when `trust_proxy`) and nginx in front of
    /// it, and waits until both accept requests.
    async fn start(trust_proxy: bool) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        // nginx's workers run as an unprivileged user when the tests run as root: they must be
        // able to enter the directory to create their temporary files.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let (hookline, public, admin, log) = start_hookline(dir.path(), trust_proxy).await;
        let (nginx, proxy) = start_nginx(dir.path(), public).await;
        Stack {
            proxy,
            public,
            admin,
            log,
            _nginx: nginx,
            _hookline: hookline,
            dir,
        }
    }

    /// A URL on nginx.
    fn url(&self, path: &str) -> String {
        url(self.proxy, path)
    }

    /// hookline's current metrics, in Prometheus text format.
    async fn metrics(&self) -> String {
        let response = reqwest::get(url(self.admin, "/metrics")).await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    }
}

/// Starts the hookline binary configured by environment only, on loopback ports it picks
/// itself (read back from its log, so parallel tests cannot collide), logging JSON to a file.
async fn start_hookline(dir: &Path, trust_proxy: bool) -> (Guard, SocketAddr, SocketAddr, PathBuf) {
    let log = dir.join("hookline.log");
    let mut command = hookline_command(&dir.join("data"), &log);
    command
        .env("HOOKLINE_LOG", "info")
        .env("HOOKLINE_LOG_FORMAT", "json")
        .env("HOOKLINE_BODY_LIMIT", HOOKLINE_BODY_LIMIT.to_string())
        // One request at a time: a sender whose body nginx streamed to hookline slowly would
        // hold the only slot and the next sender would get 503, so the slow-client test shows
        // that nginx's request buffering keeps slow senders away from hookline.
        .env("HOOKLINE_MAX_CONCURRENT_REQUESTS", "1");
    if trust_proxy {
        command.env("HOOKLINE_TRUSTED_PROXIES", "127.0.0.1/32");
    }
    let mut guard = spawn(&mut command, "hookline", log.clone());
    let mut attempts = 0;
    let (public, admin) = loop {
        guard.assert_running();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(addresses) = started_addresses(&text) {
            break addresses;
        }
        attempts += 1;
        assert!(attempts < 400, "hookline did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ready = reqwest::get(url(public, "/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    (guard, public, admin, log)
}

/// Writes an nginx configuration around `deploy/nginx.conf`'s webhook location, proxying to
/// `upstream`, starts nginx in the foreground and waits until it answers. nginx needs its port
/// up front: when another process takes it first, nginx exits and we try another one.
async fn start_nginx(dir: &Path, upstream: SocketAddr) -> (Guard, SocketAddr) {
    let (http_level, location) = deploy_nginx_parts();
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let p = prefix.display();
    // Answered by this nginx only: tells it apart from whatever else may hold the port.
    let identity = p.to_string();
    for _ in 0..5 {
        let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let conf = format!(
            "daemon off;
master_process on;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
{http_level}
    upstream hookline {{
        server {upstream};
        keepalive 4;
    }}
    server {{
        listen {proxy};
        client_header_timeout 10s;
        access_log {p}/logs/access.log hookline;
        location = /test-identity {{
            return 200 \"{identity}\";
        }}
        {location}
    }}
}}
"
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = prefix.join("logs/error.log");
        let out = std::fs::File::create(prefix.join("logs/stderr.log")).unwrap();
        let mut command = Command::new(nginx_binary());
        command
            .arg("-p")
            .arg(&prefix)
            .arg("-e")
            .arg(&log)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let mut guard = spawn(&mut command, "nginx", log);
        for attempt in 0.. {
            if guard.child.try_wait().unwrap().is_some() {
                let error = std::fs::read_to_string(&guard.log).unwrap_or_default();
                assert!(
                    error.contains("Address already in use"),
                    "nginx exited:\n{error}"
                );
                break; // port taken: next one
            }
            let answer = match reqwest::get(url(proxy, "/test-identity")).await {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if answer == identity {
                return (guard, proxy);
            }
            assert!(attempt < 400, "nginx does not answer on {proxy}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("no free port for nginx after 5 tries");
}

/// Runs `hookline send …` like an operator would; returns whether it exited 0, and its output.
fn hookline_send(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("send")
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("hookline send runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Sends a signed ChatBrick `store.created` through the stack's proxy with `hookline send`.
fn send_chatbrick(stack: &Stack, secret: &str) -> (bool, String) {
    hookline_send(&[
        "chatbrick",
        "store.created",
        "--url",
        &stack.url("/webhooks/chatbrick"),
        "--secret",
        secret,
    ])
}

/// The sum of the samples of metric `name` whose labels include every pair of `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (label_text, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once('}')?,
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.trim().parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// `hookline_requests_total` for one source and outcome.
fn requests(text: &str, source: &str, outcome: &str) -> f64 {
    metric(
        text,
        "hookline_requests_total",
        &[("source", source), ("outcome", outcome)],
    )
}

/// The `client` hookline recorded on its access-log line ("request") for `request_id`.
async fn logged_client(log: &Path, request_id: &str) -> String {
    eventually(Duration::from_secs(10), || async move {
        let text = std::fs::read_to_string(log).ok()?;
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|json| json["message"] == "request" && json["span"]["request_id"] == request_id)
            .and_then(|json| json["span"]["client"].as_str().map(str::to_owned))
    })
    .await
}

/// Posts a signed ChatBrick event through the proxy with the given extra headers; returns the
/// status and the request id hookline answered with.
async fn post_signed(stack: &Stack, id: &str, extra: &[(&str, &str)]) -> (u16, String) {
    let body = fixture("chatbrick/store.created.example.json");
    let mut headers = svix_headers(SECRET, id, now(), &body);
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let client = reqwest::Client::new();
    let (status, response_headers, _) =
        post_json(&client, &stack.url("/webhooks/chatbrick"), &headers, body).await;
    let request_id = response_headers
        .get("x-request-id")
        .expect("x-request-id in the response, through nginx")
        .to_str()
        .unwrap()
        .to_owned();
    (status, request_id)
}

/// Reads an HTTP response head from a raw connection and returns its status code.
fn read_status(stream: &mut TcpStream) -> u16 {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        let n = stream.read(&mut byte).expect("a response");
        assert!(n == 1 && head.len() < 1024, "no status line: {head:?}");
        head.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_event_goes_through_nginx_with_hookline_send() {
    let stack = Stack::start(true).await;
    let before = stack.metrics().await;
    let chatbrick: Vec<&str> = EXAMPLES
        .iter()
        .filter(|(source, _, _)| *source == hookline::chatbrick::SOURCE)
        .map(|(_, name, _)| *name)
        .collect();
    let livedesk: Vec<&str> = EXAMPLES
        .iter()
        .filter(|(source, _, _)| *source == hookline::livedesk::SOURCE)
        .map(|(_, name, _)| *name)
        .collect();
    assert_eq!((chatbrick.len(), livedesk.len()), (8, 5));

    let chatbrick_url = stack.url("/webhooks/chatbrick");
    for event in &chatbrick {
        let (ok, output) = hookline_send(&[
            "chatbrick",
            event,
            "--url",
            &chatbrick_url,
            "--secret",
            SECRET,
        ]);
        assert!(ok, "hookline send chatbrick {event}: {output}");
        assert!(output.starts_with("200 "), "{event}: {output}");
    }
    let livedesk_url = stack.url(&format!("/webhooks/livedesk/{TOKEN}"));
    for event in &livedesk {
        let (ok, output) = hookline_send(&["livedesk", event, "--url", &livedesk_url]);
        assert!(ok, "hookline send livedesk {event}: {output}");
        assert!(output.contains("\"accepted\""), "{event}: {output}");
    }

    let after = stack.metrics().await;
    for (source, sent) in [("chatbrick", 8.0), ("livedesk", 5.0)] {
        assert_eq!(
            requests(&after, source, "accepted") - requests(&before, source, "accepted"),
            sent,
            "{source} accepted\n{after}"
        );
    }
    for event in &chatbrick {
        let events = metric(
            &after,
            "hookline_events_total",
            &[("source", "chatbrick"), ("type", event)],
        );
        assert_eq!(events, 1.0, "hookline_events_total for {event}\n{after}");
    }
    // Each accepted event is then delivered to the default `log` handler.
    let admin = stack.admin;
    eventually(Duration::from_secs(20), || async move {
        let text = reqwest::get(url(admin, "/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let delivered = metric(
            &text,
            "hookline_delivery_attempts_total",
            &[("handler", "log"), ("outcome", "delivered")],
        );
        (delivered >= 13.0).then_some(())
    })
    .await;

    // nginx's access log, in deploy/nginx.conf's format, does not contain the liveDesk token.
    let access = std::fs::read_to_string(stack.dir.path().join("nginx/logs/access.log")).unwrap();
    assert!(access.contains("/webhooks/livedesk/***"), "{access}");
    assert!(
        !access.contains(TOKEN),
        "nginx access log leaks the token:\n{access}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logged_client_is_the_forwarded_one_only_behind_a_trusted_proxy() {
    let trusted = Stack::start(true).await;
    let untrusted = Stack::start(false).await;

    // The sender claims 198.51.100.7; nginx appends the address it sees (127.0.0.1), which
    // hookline trusts, so hookline walks one step further left. That is right here only because
    // the test client is itself on loopback: nginx's own address is the only one to trust.
    let (status, request_id) = post_signed(
        &trusted,
        "msg_xff_trusted",
        &[
            ("x-forwarded-for", "198.51.100.7"),
            ("x-request-id", "proxy-test-trusted"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        request_id, "proxy-test-trusted",
        "X-Request-Id passes through"
    );
    assert_eq!(
        logged_client(&trusted.log, &request_id).await,
        "198.51.100.7"
    );

    // Without a client-supplied header the client is the address nginx saw.
    let (status, request_id) = post_signed(&trusted, "msg_no_xff", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(request_id.len(), 32, "nginx's $request_id: {request_id}");
    assert_eq!(logged_client(&trusted.log, &request_id).await, "127.0.0.1");

    // hookline trusting no proxy ignores the header: the client is nginx, the peer.
    let (status, request_id) = post_signed(
        &untrusted,
        "msg_xff_untrusted",
        &[
            ("x-forwarded-for", "198.51.100.7"),
            ("x-request-id", "proxy-test-untrusted"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        logged_client(&untrusted.log, &request_id).await,
        "127.0.0.1"
    );
    // Every line either hookline wrote is one JSON object without a key written twice.
    for stack in [&trusted, &untrusted] {
        assert!(!strict_json_log(&stack.log).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_and_hookline_stays_up() {
    let stack = Stack::start(true).await;

    // Above nginx's client_max_body_size: nginx answers from the Content-Length alone.
    let mut stream = TcpStream::connect(stack.proxy).unwrap();
    let head = format!(
        "POST /webhooks/chatbrick HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).unwrap();
    assert_eq!(read_status(&mut stream), 413, "from nginx");
    drop(stream);

    // Under nginx's limit but above hookline's: nginx passes it on and hookline says 413.
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(HOOKLINE_BODY_LIMIT * 2));
    let headers = svix_headers(SECRET, "msg_too_large", now(), body.as_bytes());
    let client = reqwest::Client::new();
    let (status, _, json) =
        post_json(&client, &stack.url("/webhooks/chatbrick"), &headers, body).await;
    assert_eq!(status, 413, "from hookline: {json}");
    assert_eq!(json["error"], "body_too_large");

    // Still up and accepting.
    let ready = client
        .get(url(stack.public, "/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let (ok, output) = send_chatbrick(&stack, SECRET);
    assert!(ok, "{output}");
    let metrics = stack.metrics().await;
    assert_eq!(
        requests(&metrics, "chatbrick", "body_too_large"),
        1.0,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sender_does_not_hold_up_the_others() {
    let stack = Stack::start(true).await;
    let body = fixture("chatbrick/store.updated.example.json");
    let mut head = format!(
        "POST /webhooks/chatbrick HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in svix_headers(SECRET, "msg_slow_sender", now(), &body) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let (head_start, head_end) = head.as_bytes().split_at(head.len() / 2);
    let (body_start, body_end) = body.split_at(body.len() / 2);

    let mut slow = TcpStream::connect(stack.proxy).unwrap();
    // Half the headers: another sender gets through.
    slow.write_all(head_start).unwrap();
    let (ok, output) = send_chatbrick(&stack, SECRET);
    assert!(ok, "while headers trickle: {output}");
    // All headers and half the body: nginx holds the body, hookline's one slot stays free.
    slow.write_all(head_end).unwrap();
    slow.write_all(body_start).unwrap();
    let (ok, output) = send_chatbrick(&stack, SECRET);
    assert!(ok, "while the body trickles: {output}");
    // The slow sender finishes and is accepted too.
    slow.write_all(body_end).unwrap();
    assert_eq!(read_status(&mut slow), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_accepted_duplicate_and_forged_requests() {
    let stack = Stack::start(true).await;
    let before = stack.metrics().await;

    let (ok, output) = send_chatbrick(&stack, SECRET);
    assert!(ok, "{output}");
    // Signed with another endpoint's secret: a forgery as far as hookline can tell.
    let (ok, output) = send_chatbrick(&stack, SECRET_2);
    assert!(!ok && output.starts_with("401 "), "{output}");
    assert!(output.contains("bad_signature"), "{output}");
    // ChatBrick retrying a message it already delivered.
    for _ in 0..2 {
        let (status, _) = post_signed(&stack, "msg_sent_twice", &[]).await;
        assert_eq!(status, 200);
    }
    // liveDesk at a wrong token.
    let (ok, output) = hookline_send(&[
        "livedesk",
        "message_created",
        "--url",
        &stack.url("/webhooks/livedesk/not-the-token-0123456789"),
    ]);
    assert!(!ok && output.starts_with("401 "), "{output}");

    let after = stack.metrics().await;
    let delta = |source: &str, outcome: &str| {
        requests(&after, source, outcome) - requests(&before, source, outcome)
    };
    assert_eq!(delta("chatbrick", "accepted"), 2.0, "{after}");
    assert_eq!(delta("chatbrick", "duplicate"), 1.0, "{after}");
    assert_eq!(delta("chatbrick", "bad_signature"), 1.0, "{after}");
    assert_eq!(delta("livedesk", "unknown_token"), 1.0, "{after}");
    for name in [
        "hookline_intake_duration_seconds_count",
        "hookline_store_commit_duration_seconds_count",
        "hookline_store_commit_batch_size_count",
    ] {
        assert!(metric(&after, name, &[]) >= 3.0, "{name}\n{after}");
    }
    assert!(!strict_json_log(&stack.log).is_empty());
}
