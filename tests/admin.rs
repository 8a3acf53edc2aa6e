//! The admin listener and the CLI that talks to it: metrics that move with traffic, and the
//! `events` / `replay` commands against a running server.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use hookline::config::RouteConfig;

/// The value of one Prometheus sample line (`name{labels} value`), 0 when absent.
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(name_and_labels))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(client: &reqwest::Client, addr: std::net::SocketAddr) -> String {
    client
        .get(url(addr, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn metrics_move_with_requests_duplicates_failures_and_deliveries() {
    let sink = Sink::start().await;
    sink.answer(400);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Labels of its own: tests in this binary share one metrics recorder.
    config
        .sources
        .chatbrick
        .endpoints
        .push(hookline::config::ChatbrickEndpoint {
            name: "metrics".into(),
            secrets: vec![SECRET.into()],
        });
    config
        .handlers
        .insert("metrics-sink".into(), forward_to(&sink, 4));
    config.routes = vec![RouteConfig::everything("metrics-sink")];
    let server = start(config).await;
    let client = reqwest::Client::new();
    let accepted =
        r#"hookline_requests_total{source="chatbrick",endpoint="metrics",outcome="accepted"}"#;
    let duplicate =
        r#"hookline_requests_total{source="chatbrick",endpoint="metrics",outcome="duplicate"}"#;
    let forged =
        r#"hookline_requests_total{source="chatbrick",endpoint="metrics",outcome="bad_signature"}"#;
    let events = r#"hookline_events_total{source="chatbrick",type="store.updated"}"#;
    let dead_attempts =
        r#"hookline_delivery_attempts_total{handler="metrics-sink",outcome="dead"}"#;
    let before = scrape(&client, server.admin_addr()).await;

    let body = fixture("chatbrick/store.updated.example.json");
    let endpoint = url(server.public_addr(), "/webhooks/chatbrick/metrics");
    for _ in 0..2 {
        let headers = svix_headers(SECRET, "msg_metrics", now(), &body);
        let (status, _, _) = post_json(&client, &endpoint, &headers, body.clone()).await;
        assert_eq!(status, 200);
    }
    let forged_headers = svix_headers(SECRET_2, "msg_forged", now(), &body);
    let (status, _, _) = post_json(&client, &endpoint, &forged_headers, body.clone()).await;
    assert_eq!(status, 401);

    let after = eventually(Duration::from_secs(10), || {
        let client = client.clone();
        let addr = server.admin_addr();
        async move {
            let text = scrape(&client, addr).await;
            let dead = sample(&text, r#"hookline_deliveries{state="dead"}"#);
            (sample(&text, dead_attempts) >= 1.0 && dead == 1.0).then_some(text)
        }
    })
    .await;
    assert_eq!(sample(&after, accepted) - sample(&before, accepted), 1.0);
    assert_eq!(sample(&after, duplicate) - sample(&before, duplicate), 1.0);
    assert_eq!(sample(&after, forged) - sample(&before, forged), 1.0);
    assert_eq!(sample(&after, events) - sample(&before, events), 1.0);
    assert!(after.contains("hookline_store_commit_duration_seconds_bucket"));
    assert!(after.contains("hookline_handler_duration_seconds_bucket"));
    assert!(after.contains("hookline_intake_duration_seconds_bucket"));
    assert!(!after.contains(SECRET) && !after.contains(TOKEN));
    server.shutdown();
    server.wait().await;
}

/// Runs the CLI against the server's admin listener, with the configuration in the environment.
fn cli(admin: std::net::SocketAddr, args: &[&str]) -> (bool, serde_json::Value, String) {
    let output = cli_output(admin, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (
        output.status.success(),
        serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null),
        stderr,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_lists_shows_and_replays() {
    let sink = Sink::start().await;
    sink.answer(400);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.handlers.insert("sink".into(), forward_to(&sink, 4));
    config.routes = vec![RouteConfig::everything("sink")];
    let server = start(config).await;
    let client = reqwest::Client::new();
    let (status, json) = send_chatbrick(
        &client,
        server.public_addr(),
        "msg_cli",
        &fixture("chatbrick/account.created.example.json"),
    )
    .await;
    assert_eq!(status, 200);
    let id = json["id"].as_str().unwrap().to_owned();
    let admin = server.admin_addr();

    let listed = eventually(Duration::from_secs(10), || async move {
        let (ok, json, _) = tokio::task::spawn_blocking(move || {
            cli(admin, &["events", "list", "--status", "dead", "--json"])
        })
        .await
        .unwrap();
        (ok && json["events"].as_array().is_some_and(|e| e.len() == 1)).then_some(json)
    })
    .await;
    assert_eq!(listed["events"][0]["id"], id.as_str());
    assert_eq!(listed["events"][0]["event_type"], "account.created");

    let show_args = ["events", "show", id.as_str()];
    let (ok, shown, stderr) = cli(admin, &show_args);
    assert!(ok, "{stderr}");
    assert_eq!(shown["deliveries"][0]["state"], "dead");
    assert_eq!(shown["deliveries"][0]["history"][0]["http_status"], 400);

    let (ok, dead, _) = cli(admin, &["events", "dead", "--route", "sink", "--json"]);
    assert!(ok);
    assert_eq!(dead["dead_letters"].as_array().unwrap().len(), 1);

    sink.answer(200);
    let (ok, replayed, stderr) = cli(
        admin,
        &["replay", "dead", "--source", "chatbrick", "--json"],
    );
    assert!(ok, "{stderr}");
    assert_eq!(replayed["replayed"], 1);
    let received = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received[0].headers["webhook-id"], id.as_str());

    let (ok, _, stderr) = cli(admin, &["events", "show", "evt_missing"]);
    assert!(!ok);
    assert!(stderr.contains("404"), "{stderr}");

    // For a person, without --json: tables, and what a replay did in words.
    let table = cli_text(admin, &["events", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("RECEIVED "), "{table}");
    assert!(lines[0].ends_with("STATUS     ID"), "{table}");
    assert!(
        lines[1].contains(" chatbrick  account.created  "),
        "{table}"
    );
    assert!(lines[1].ends_with(&id), "{table}");
    let dead = cli_text(admin, &["events", "dead"]);
    assert_eq!(dead.trim(), "no dead letters");
    let replayed = cli_text(admin, &["replay", "event", &id]);
    assert_eq!(replayed.trim(), "replayed 1 delivery");
    server.shutdown();
    server.wait().await;
}

/// A contact's first event dies on an ordered route and blocks the contact's key; `hookline
/// blocked list` shows the key with the dead letter that heads it, and `hookline blocked skip`
/// lets the contact's next event go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_lists_and_skips_blocked_keys() {
    let sink = Sink::start().await;
    sink.answer(400);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.handlers.insert("sink".into(), forward_to(&sink, 4));
    let mut route = RouteConfig::everything("sink");
    route.order_by = Some("contact".into());
    config.routes = vec![route];
    let server = start(config).await;
    let client = reqwest::Client::new();
    let body = fixture("chatbrick/contact.connection.connected.store_and_staff.json");
    let (_, first) = send_chatbrick(&client, server.public_addr(), "msg_first", &body).await;
    let admin = server.admin_addr();
    // The key listed once its head is dead, then with the second event waiting behind it.
    let blocked_with = |waiting: u64| async move {
        eventually(Duration::from_secs(10), || async move {
            let (ok, json, _) =
                tokio::task::spawn_blocking(move || cli(admin, &["blocked", "list", "--json"]))
                    .await
                    .unwrap();
            (ok && json["blocked"][0]["waiting"] == waiting).then_some(json)
        })
        .await
    };
    blocked_with(0).await;
    let (_, second) = send_chatbrick(&client, server.public_addr(), "msg_second", &body).await;
    let listed = blocked_with(1).await;
    assert_eq!(listed["blocked"].as_array().unwrap().len(), 1, "{listed}");
    let key = &listed["blocked"][0];
    assert_eq!(key["route"], "sink");
    assert_eq!(key["event_id"], first["id"]);
    let head = key["head"].as_i64().unwrap().to_string();

    let table = cli_text(admin, &["blocked", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ROUTE "), "{table}");
    assert!(lines[0].ends_with("WAITING  EVENT"), "{table}");
    assert!(lines[1].starts_with("sink "), "{table}");
    assert!(lines[1].ends_with(first["id"].as_str().unwrap()), "{table}");

    sink.answer(200);
    let skipped = cli_text(admin, &["blocked", "skip", &head]);
    assert_eq!(
        skipped.trim(),
        format!("skipped dead letter {head}: the next delivery of its key goes")
    );
    let received = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        received[0].headers["webhook-id"],
        second["id"].as_str().unwrap()
    );
    assert_eq!(
        cli_text(admin, &["blocked", "list"]).trim(),
        "no blocked keys"
    );
    let (ok, _, stderr) = cli(admin, &["blocked", "skip", &head]);
    assert!(!ok);
    assert!(stderr.contains("404"), "{stderr}");
    server.shutdown();
    server.wait().await;
}

/// The CLI's run against the server's admin listener.
fn cli_output(admin: std::net::SocketAddr, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(args)
        .env_clear()
        .env("HOOKLINE_ADMIN_LISTEN", admin.to_string())
        .output()
        .unwrap()
}

/// What the CLI prints on stdout (it must succeed).
fn cli_text(admin: std::net::SocketAddr, args: &[&str]) -> String {
    let output = cli_output(admin, args);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}
