//! The real `hookline` binary as operators run it: configured only through the environment,
//! killed with SIGKILL under load, stopped with SIGTERM, and its logs checked for secrets.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use hookline::envelope::event_id;
use hookline::signature::{Key, Verifier};
use rand::Rng;

/// Starts the binary with only environment variables (and `extra`) on port 0, logging to `log`,
/// and waits until it is ready.
async fn spawn(data: &Path, extra: &[(&str, String)], log: &Path) -> Process {
    let mut command = hookline_command(data, log);
    for (k, v) in extra {
        command.env(k, v);
    }
    spawn_hookline(command, log).await
}

/// Sends SIGTERM (or SIGKILL) to the process.
fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the process to exit and returns its exit code.
async fn exit_code(child: &mut Child) -> Option<i32> {
    for _ in 0..400 {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("hookline did not exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_event_is_lost_across_sigkills() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let forward = [
        ("HOOKLINE_FORWARD_URL", sink.url()),
        ("HOOKLINE_FORWARD_SECRET", FORWARD_SECRET.to_string()),
    ];
    let body = Arc::new(fixture(
        "chatbrick/contact.connection.connected.store_and_staff.json",
    ));
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let kills = 4;
    for round in 0..kills {
        let mut process = spawn(
            &data,
            &forward,
            &dir.path().join(format!("round{round}.log")),
        )
        .await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut senders = tokio::task::JoinSet::new();
        for worker in 0..16 {
            let (client, body, acked, stop) =
                (client.clone(), body.clone(), acked.clone(), stop.clone());
            let addr = process.public;
            senders.spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("msg_r{round}_w{worker}_{n}");
                    n += 1;
                    let headers = svix_headers(SECRET, &id, now(), &body);
                    let sent = client
                        .post(url(addr, "/webhooks/chatbrick"))
                        .headers(
                            headers
                                .iter()
                                .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                                .collect(),
                        )
                        .body(body.to_vec())
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => {
                            acked.lock().unwrap().insert(id);
                        }
                        Ok(r) => assert!(r.status().as_u16() == 503, "unexpected {}", r.status()),
                        Err(_) => break, // killed mid-request: not acknowledged
                    }
                }
            });
        }
        let pause = rand::thread_rng().gen_range(300..1200);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        process.child.kill().unwrap(); // SIGKILL
        process.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        while senders.join_next().await.is_some() {}
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "load was applied ({} acked)",
        acked.len()
    );

    // Restart: everything acknowledged is stored and reaches the sink.
    let mut process = spawn(&data, &forward, &dir.path().join("final.log")).await;
    let expected: HashSet<String> = acked
        .iter()
        .map(|id| event_id(hookline::chatbrick::SOURCE, id))
        .collect();
    let key: Key = FORWARD_SECRET.parse().unwrap();
    let verifier = Verifier::new(vec![key], Duration::from_secs(300));
    let received = eventually(Duration::from_secs(60), || {
        let sink = sink.clone();
        let expected = expected.clone();
        async move {
            let received = sink.received();
            let ids: HashSet<String> = received
                .iter()
                .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
                .collect();
            expected.is_subset(&ids).then_some(received)
        }
    })
    .await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for request in &received {
        let verified = verifier
            .verify(&request.headers, &request.body, now())
            .expect("valid signature");
        *counts.entry(verified.id).or_default() += 1;
    }
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    // Only deliveries in flight at a kill may arrive twice: at most one batch per kill.
    assert!(duplicates <= kills * 32, "{duplicates} duplicates");
    let client = reqwest::Client::new();
    let listed: serde_json::Value = client
        .get(url(process.admin, "/api/events?limit=1000&status=pending"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed["events"].as_array().unwrap().len() <= expected.len());
    process.child.kill().unwrap();
    process.child.wait().unwrap();
}

#[tokio::test]
async fn sigterm_finishes_gracefully_and_logs_hide_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hookline.log");
    let data = dir.path().join("data");
    let extra = [
        ("HOOKLINE_LOG", "info".to_string()),
        ("HOOKLINE_LOG_FORMAT", "json".to_string()),
        (
            "HOOKLINE_LIVEDESK_SECRET",
            "chatwoot-secret-value".to_string(),
        ),
        ("HOOKLINE_ADMIN_TOKEN", "admin-token-value".to_string()),
    ];
    let mut process = spawn(&data, &extra, &log).await;
    let client = reqwest::Client::new();
    let body = fixture("livedesk/message_created.api_channel_doc.json");
    let headers: Vec<(String, String)> =
        hookline::send::livedesk_headers(Some("chatwoot-secret-value"), &body)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    let (status, response_headers, _) = post_json(
        &client,
        &url(process.public, &format!("/webhooks/livedesk/{TOKEN}")),
        &headers,
        body,
    )
    .await;
    assert_eq!(status, 200);
    let request_id = response_headers["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, _, _) = post_json(
        &client,
        &url(process.public, "/webhooks/livedesk/wrong-token-123456789"),
        &[],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 401);
    // The admin API wants its token.
    let denied = client
        .get(url(process.admin, "/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 401);
    let allowed = client
        .get(url(process.admin, "/api/events"))
        .bearer_auth("admin-token-value")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status().as_u16(), 200);

    signal(&process.child, "TERM");
    assert_eq!(exit_code(&mut process.child).await, Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [
        TOKEN,
        "wrong-token-123456789",
        "chatwoot-secret-value",
        "admin-token-value",
        SECRET,
    ] {
        assert!(!text.contains(secret), "log leaks {secret}:\n{text}");
    }
    assert!(text.contains("/webhooks/livedesk/***"), "{text}");
    strict_json_lines(&text);
    let request_line = text
        .lines()
        .find(|l| l.contains(&request_id))
        .expect("request id in the logs");
    let json: serde_json::Value = serde_json::from_str(request_line).expect("json log line");
    assert!(json["timestamp"].is_string() && json["level"].is_string());
    let span = &json["span"];
    assert_eq!(span["source"], "livedesk", "{request_line}");
    assert!(
        span["event_id"].as_str().unwrap().starts_with("evt_ld_"),
        "{request_line}"
    );
    assert!(text.contains("hookline stopped"));
}

/// With `HOOKLINE_SHUTDOWN_DRAIN`, SIGTERM first turns `/readyz` to 503 while webhooks are
/// still answered (a load balancer's health check takes the replica out meanwhile), and only
/// then does hookline stop, cleanly.
#[tokio::test]
async fn sigterm_with_a_drain_reports_unready_first_and_goes_on_answering() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hookline.log");
    let extra = [
        ("HOOKLINE_SHUTDOWN_DRAIN", "5s".to_string()),
        ("HOOKLINE_LOG", "info".to_string()),
    ];
    let mut process = spawn(&dir.path().join("data"), &extra, &log).await;
    let client = reqwest::Client::new();
    signal(&process.child, "TERM");
    eventually(Duration::from_secs(4), || async {
        let r = client
            .get(url(process.public, "/readyz"))
            .send()
            .await
            .ok()?;
        (r.status() == 503).then_some(())
    })
    .await;
    let body = livedesk_message("Ana", "still answered while draining", 7);
    let (status, _) = send_livedesk(&client, process.public, "drain-1", &body).await;
    assert_eq!(status, 200);
    assert_eq!(exit_code(&mut process.child).await, Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    let draining = text.find("/readyz says 503").expect("the drain is logged");
    let stopping = text.find("no new requests").expect("then the stop");
    assert!(draining < stopping, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_rejections_is_counted_in_full_but_logged_once_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hookline.log");
    let extra = [("HOOKLINE_LOG_FORMAT", "json".to_string())];
    let mut process = spawn(&dir.path().join("data"), &extra, &log).await;
    let client = reqwest::Client::new();
    let body = fixture("chatbrick/store.created.example.json");
    // Signed with another key: authentic-looking, but not ours.
    let forged = svix_headers(SECRET_2, "msg_forged", now(), &body);
    let started = std::time::Instant::now();
    let flood = 300;
    for _ in 0..flood {
        let url = url(process.public, "/webhooks/chatbrick");
        let (status, _, _) = post_json(&client, &url, &forged, body.clone()).await;
        assert_eq!(status, 401);
    }
    let flood_took = started.elapsed();
    // One more after a quiet second gets a line of its own, reporting what was left out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let url = url(process.public, "/webhooks/chatbrick");
    assert_eq!(post_json(&client, &url, &forged, body).await.0, 401);
    let metrics = client
        .get(common::url(process.admin, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "hookline_requests_total{{source=\"chatbrick\",endpoint=\"default\",outcome=\"bad_signature\"}} {}",
            flood + 1
        )),
        "every rejection is counted:\n{metrics}"
    );
    signal(&process.child, "TERM");
    assert_eq!(exit_code(&mut process.child).await, Some(0));

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = strict_json_lines(&text)
        .into_iter()
        .filter(|json| json["reason"] == "bad_signature")
        .collect();
    let most = 2 + flood_took.as_secs() as usize;
    assert!(
        (2..=most).contains(&lines.len()),
        "{} lines for {} rejections in {flood_took:?}:\n{text}",
        lines.len(),
        flood + 1
    );
    let reported: u64 = lines
        .iter()
        .map(|json| 1 + json["left_out"].as_u64().expect("left_out"))
        .sum();
    assert_eq!(
        reported,
        flood as u64 + 1,
        "lines plus what they report left out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_until_every_attempt_that_ran_is_recorded() {
    let sink = Sink::start().await;
    sink.slow_down(Duration::from_millis(200));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let forward = [
        ("HOOKLINE_FORWARD_URL", sink.url()),
        ("HOOKLINE_FORWARD_SECRET", FORWARD_SECRET.to_string()),
    ];
    let mut process = spawn(&data, &forward, &dir.path().join("hookline.log")).await;
    let client = reqwest::Client::new();
    let body = Arc::new(fixture("chatbrick/store.created.example.json"));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..300 {
        let (client, body, addr) = (client.clone(), body.clone(), process.public);
        tasks
            .spawn(async move { send_chatbrick(&client, addr, &format!("msg_t{i}"), &body).await });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().0, 200);
    }
    // Stop while deliveries still run and another connection holds the write lock for a
    // while, so that their records wait to be committed: nothing waits on those commits but
    // shutdown, and the process must not exit before them.
    let answering = sink.answering.clone();
    eventually(Duration::from_secs(10), || {
        let busy = answering.load(Ordering::SeqCst) > 0;
        async move { busy.then_some(()) }
    })
    .await;
    let db = hookline::store::SqliteStore::db_path(&data);
    let locker = {
        let db = db.clone();
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let locker = std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(db).unwrap();
            conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
            locked_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(500));
            conn.execute_batch("ROLLBACK").unwrap();
        });
        locked_rx.recv().unwrap();
        locker
    };
    signal(&process.child, "TERM");
    assert_eq!(exit_code(&mut process.child).await, Some(0));
    locker.join().unwrap();

    let at_sink: HashSet<String> = sink
        .received()
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    let conn = rusqlite::Connection::open(db).unwrap();
    let count = |state: &str| -> usize {
        conn.query_row(
            "SELECT COUNT(*) FROM deliveries WHERE handler = 'forward' AND state = ?1",
            [state],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(
        count("inflight"),
        0,
        "an attempt that ran was left unrecorded"
    );
    assert_eq!(count("delivered"), at_sink.len());
    assert_eq!(count("delivered") + count("pending"), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_hookline_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = spawn(&data, &[], &dir.path().join("first.log")).await;

    // The same data directory, other ports: refused, naming the holder; check-config agrees.
    for args in [&["serve"][..], &["check-config"][..]] {
        let second = Command::new(env!("CARGO_BIN_EXE_hookline"))
            .args(args)
            .env_clear()
            .env("HOOKLINE_LISTEN", "127.0.0.1:0")
            .env("HOOKLINE_ADMIN_LISTEN", "127.0.0.1:0")
            .env("HOOKLINE_DATA_DIR", &data)
            .env("HOOKLINE_CHATBRICK_SECRET", SECRET)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&second.stdout),
            String::from_utf8_lossy(&second.stderr)
        );
        assert!(
            !second.status.success(),
            "{args:?} ran beside the first:\n{said}"
        );
        let holder = format!("another hookline process (pid {})", first.child.id());
        assert!(said.contains(&holder), "{args:?}: {said}");
        assert!(said.contains(&data.display().to_string()), "{said}");
    }

    // The first one is unaffected and still the only writer.
    let client = reqwest::Client::new();
    let body = fixture("chatbrick/store.created.example.json");
    let (status, _) = send_chatbrick(&client, first.public, "msg_after_second", &body).await;
    assert_eq!(status, 200);
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    // Its lock died with it (SIGKILL included): the next one starts.
    let mut next = spawn(&data, &[], &dir.path().join("next.log")).await;
    next.child.kill().unwrap();
    next.child.wait().unwrap();
}

/// The `hookline::event` lines of a log, as `(event_type, event_id)`.
fn event_lines(log: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(log).unwrap();
    strict_json_lines(&text)
        .into_iter()
        .filter(|line| line["target"] == "hookline::event")
        .map(|line| {
            let field = |name: &str| line[name].as_str().unwrap_or_default().to_owned();
            (field("event_type"), field("event_id"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_url_forwards_and_logs_unless_the_files_routes_say_otherwise() {
    let sink = Sink::start().await;
    let forward = |extra: Option<&Path>| {
        let mut env = vec![
            ("HOOKLINE_FORWARD_URL", sink.url()),
            ("HOOKLINE_FORWARD_SECRET", FORWARD_SECRET.to_string()),
            ("HOOKLINE_LOG_FORMAT", "json".to_string()),
            (
                "HOOKLINE_LOG",
                "warn,hookline::startup=info,hookline::event=info".to_string(),
            ),
        ];
        if let Some(config) = extra {
            env.push(("HOOKLINE_CONFIG", config.display().to_string()));
        }
        env
    };
    let client = reqwest::Client::new();
    let connected = fixture("chatbrick/contact.connection.connected.store_and_staff.json");
    let created = fixture("chatbrick/store.created.example.json");

    // The simple case: every event is forwarded and logged.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("simple.log");
    let mut process = spawn(&dir.path().join("data"), &forward(None), &log).await;
    let (status, json) = send_chatbrick(&client, process.public, "msg_fwd_1", &connected).await;
    assert_eq!(status, 200);
    let id = json["id"].as_str().unwrap().to_owned();
    let received = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(received[0].headers["webhook-id"], id.as_str());
    let logged = eventually(Duration::from_secs(10), || {
        let lines = event_lines(&log);
        async move { (!lines.is_empty()).then_some(lines) }
    })
    .await;
    assert_eq!(logged, [("contact.connection.connected".to_owned(), id)]);
    process.child.kill().unwrap();
    process.child.wait().unwrap();

    // Routes in the file decide: it logs store events only, and forwarding adds its route.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookline.toml");
    std::fs::write(
        &config,
        "[[routes]]\nhandler = \"log\"\nevents = [\"store.*\"]\n",
    )
    .unwrap();
    let log = dir.path().join("routes.log");
    let mut process = spawn(&dir.path().join("data"), &forward(Some(&config)), &log).await;
    let mut ids = Vec::new();
    for (n, body) in [&connected, &created].into_iter().enumerate() {
        let id = format!("msg_fwd_routes_{n}");
        let (status, json) = send_chatbrick(&client, process.public, &id, body).await;
        assert_eq!(status, 200);
        ids.push(json["id"].as_str().unwrap().to_owned());
    }
    sink.wait_for(3, Duration::from_secs(20)).await;
    let logged = eventually(Duration::from_secs(10), || {
        let lines = event_lines(&log);
        async move { (!lines.is_empty()).then_some(lines) }
    })
    .await;
    assert_eq!(logged, [("store.created".to_owned(), ids[1].clone())]);
    process.child.kill().unwrap();
    process.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_signs_with_the_configured_secrets_and_finds_its_own_server() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hookline.log");
    let extra = [(
        "HOOKLINE_LIVEDESK_SECRET",
        "chatwoot-secret-0123456789".to_string(),
    )];
    let mut process = spawn(&dir.path().join("data"), &extra, &log).await;
    // The configuration of the server, as an operator has it in the environment; no --secret,
    // and for liveDesk no --url either (it is made from HOOKLINE_LISTEN and the token).
    let configured = |command: &mut Command| {
        command
            .env_clear()
            .env("HOOKLINE_LISTEN", process.public.to_string())
            .env("HOOKLINE_CHATBRICK_SECRET", SECRET)
            .env("HOOKLINE_LIVEDESK_TOKEN", TOKEN)
            .env("HOOKLINE_LIVEDESK_SECRET", "chatwoot-secret-0123456789");
    };
    let chatbrick_url = url(process.public, "/webhooks/chatbrick");
    for args in [
        &[
            "send",
            "chatbrick",
            "store.created",
            "--url",
            &chatbrick_url,
        ][..],
        &["send", "chatbrick", "account.created"][..],
        &["send", "livedesk", "message_created"][..],
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookline"));
        configured(command.args(args));
        let output = command.output().unwrap();
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}: {output:?}");
        assert!(
            said.starts_with("200 ") && said.contains("accepted"),
            "{said}"
        );
    }
    process.child.kill().unwrap();
    process.child.wait().unwrap();
}
