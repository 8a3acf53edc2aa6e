//! JSON logs parse strictly: the real binary, logging JSON at `debug`, taken through what a day
//! brings (events of both providers, duplicates, rejections, failing and dead deliveries,
//! replays, admin calls, start-up warnings, shutdown), and every line it wrote is read by a
//! parser that refuses a key written twice. A panic, too, comes out as a JSON line.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_of_a_busy_day_parses_without_duplicate_keys() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hookline.log");
    let sink = Sink::start().await;
    sink.answer(500);
    let config = dir.path().join("hookline.toml");
    std::fs::write(
        &config,
        format!(
            "[handlers.crm]\ntype = \"forward\"\nurl = {:?}\nsecret = {FORWARD_SECRET:?}\n\
             [store]\nprune_interval = \"1s\"\n[delivery]\nmax_attempts = 2\n\
             initial_backoff = \"100ms\"\n\
             [[routes]]\nhandler = \"log\"\n[[routes]]\nhandler = \"crm\"\n",
            sink.url()
        ),
    )
    .unwrap();
    let mut command = hookline_command(&dir.path().join("data"), &log);
    command
        .env("HOOKLINE_CONFIG", &config)
        .env("HOOKLINE_LOG_FORMAT", "json")
        .env("HOOKLINE_LOG", "debug")
        .env("HOOKLINE_BODY_LIMIT", "8192")
        .env("HOOKLINE_LIVEDESK_SECRET", "chatwoot-signing-secret-0123");
    let process = spawn_hookline(command, &log).await;
    let (pid, public, admin) = (process.child.id(), process.public, process.admin);
    let client = reqwest::Client::new();

    // ChatBrick: accepted, duplicate, forged, stale; an unknown endpoint; a body too large.
    let body = fixture("chatbrick/contact.connection.connected.store_and_staff.json");
    for _ in 0..2 {
        let (status, _) = send_chatbrick(&client, public, "msg_json_logs_1", &body).await;
        assert_eq!(status, 200);
    }
    let forged = svix_headers(SECRET_2, "msg_forged", now(), &body);
    let stale = svix_headers(SECRET, "msg_stale", now() - 3600, &body);
    for headers in [forged, stale] {
        let target = url(public, "/webhooks/chatbrick");
        assert_eq!(
            post_json(&client, &target, &headers, body.clone()).await.0,
            401
        );
    }
    let target = url(public, "/webhooks/chatbrick/nowhere");
    assert_eq!(post_json(&client, &target, &[], body.clone()).await.0, 404);
    let target = url(public, "/webhooks/chatbrick");
    let huge = vec![b' '; 9000];
    assert_eq!(post_json(&client, &target, &[], huge).await.0, 413);

    // liveDesk: a signed message (its line has a message id), and a wrong token.
    let body = fixture("livedesk/message_created.api_channel_doc.json");
    let message_id = hookline::Envelope::decode(
        hookline::livedesk::SOURCE,
        "default",
        "x".into(),
        chrono::Utc::now(),
        bytes::Bytes::from(body.clone()),
    )
    .key_ids()
    .message
    .expect("the example is about a message");
    let headers: Vec<(String, String)> =
        hookline::send::livedesk_headers(Some("chatwoot-signing-secret-0123"), &body)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
    let target = url(public, &format!("/webhooks/livedesk/{TOKEN}"));
    assert_eq!(
        post_json(&client, &target, &headers, body.clone()).await.0,
        200
    );
    let target = url(public, "/webhooks/livedesk/wrong-token-0123456789");
    assert_eq!(post_json(&client, &target, &[], body).await.0, 401);

    // Deliveries to `crm` fail, are retried, die; replayed, they are delivered.
    let dead = eventually(Duration::from_secs(20), || {
        let client = client.clone();
        async move {
            let r = client
                .get(url(admin, "/api/dead-letters"))
                .send()
                .await
                .ok()?;
            let json: serde_json::Value = r.json().await.ok()?;
            let dead = json["dead_letters"].as_array()?.len();
            (dead == 2).then_some(dead)
        }
    })
    .await;
    assert_eq!(dead, 2);
    sink.answer(200);
    let replayed = client
        .post(url(admin, "/api/dead-letters/replay"))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status().as_u16(), 200);
    sink.wait_for(2, Duration::from_secs(20)).await;
    let bad = client
        .get(url(admin, "/api/events?source=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let metrics = client.get(url(admin, "/metrics")).send().await.unwrap();
    assert_eq!(metrics.status().as_u16(), 200);

    // A clean stop logs its own lines.
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let text = eventually(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        async move { text.contains("hookline stopped").then_some(text) }
    })
    .await;

    let lines = strict_json_lines(&text);
    assert!(lines.len() > 30, "only {} lines:\n{text}", lines.len());
    for line in &lines {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
    }
    let event_line = lines
        .iter()
        .find(|l| l["target"] == "hookline::event" && l["source"] == "livedesk")
        .expect("the liveDesk event's line");
    assert_eq!(event_line["message"], "event", "{event_line}");
    assert_eq!(
        event_line["message_id"],
        message_id.as_str(),
        "{event_line}"
    );
}

/// Run by [`a_panic_is_a_json_line`] in a child process of this test binary: JSON logging as
/// the binary sets it up, then a panic on a named thread.
#[test]
#[ignore = "run by a_panic_is_a_json_line, in a child process"]
fn panicking_child() {
    hookline::server::process::init_logging(&hookline::config::LogConfig {
        filter: "info".into(),
        format: hookline::config::LogFormat::Json,
    });
    let worker = std::thread::Builder::new()
        .name("doomed".into())
        .spawn(|| panic!("the disk is made of cheese"))
        .unwrap();
    assert!(worker.join().is_err());
}

#[test]
fn a_panic_is_a_json_line() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "panicking_child", "--ignored", "--nocapture"])
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let logged: Vec<serde_json::Value> = stdout
        .lines()
        // The test harness prints its own words before the child's line.
        .filter_map(|line| line.find('{').map(|start| &line[start..]))
        .map(|line| strict_json_lines(line).remove(0))
        .collect();
    let panic = logged
        .iter()
        .find(|l| l["target"] == "hookline::panic")
        .unwrap_or_else(|| panic!("no panic line in:\n{stdout}"));
    assert_eq!(panic["level"], "ERROR");
    assert_eq!(panic["panic"], "the disk is made of cheese");
    assert_eq!(panic["thread"], "doomed");
    assert!(panic["location"].as_str().unwrap().contains("json_logs.rs"));
    // Not the default hook's plain text.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked at"), "{stderr}");
}

#[test]
fn the_strict_parser_refuses_a_key_written_twice() {
    let twice = r#"{"message":"event","message":"3847"}"#;
    let parsed = serde_json::from_str::<StrictJson>(twice);
    assert!(parsed.is_err_and(|e| e.to_string().contains("duplicate key \"message\"")));
    let nested = r#"{"span":{"a":1,"a":2}}"#;
    assert!(serde_json::from_str::<StrictJson>(nested).is_err());
    let fine = r#"{"message":"event","message_id":"3847","span":{"a":[1,{"b":null}]}}"#;
    assert!(serde_json::from_str::<StrictJson>(fine).is_ok());
}
