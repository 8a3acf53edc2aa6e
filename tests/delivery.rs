//! Dispatch over real HTTP: forwarding to a local sink exactly once, signed; retries through an
//! outage; dead letters and replay; store failures answered with 503; handlers that run at
//! intake.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use hookline::config::RouteConfig;
use hookline::envelope::Envelope;
use hookline::handlers::{Handler, HandlerError};
use hookline::server::{Server, ServerBuilder};
use hookline::signature::{Key, Verifier};

/// A configuration that forwards every event to `sink`, retrying quickly.
fn forwarding(dir: &std::path::Path, sink: &Sink) -> hookline::config::Config {
    let mut config = config(dir);
    config.handlers.insert("sink".into(), forward_to(sink, 16));
    config.routes = vec![RouteConfig::everything("sink")];
    config.delivery.initial_backoff = Duration::from_millis(100);
    config.delivery.max_backoff = Duration::from_millis(400);
    config
}

fn verifier() -> Verifier {
    let key: Key = FORWARD_SECRET.parse().unwrap();
    Verifier::new(vec![key], Duration::from_secs(300))
}

#[tokio::test]
async fn concurrent_events_arrive_exactly_once_signed() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(forwarding(dir.path(), &sink)).await;
    let client = reqwest::Client::new();
    let body = Arc::new(fixture(
        "chatbrick/contact.connection.connected.store_and_staff.json",
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (client, body, addr) = (client.clone(), body.clone(), server.public_addr());
        tasks.spawn(async move {
            // Every tenth message is sent twice, as Svix does on a retry.
            let id = format!("msg_c{}", i - i % 10 * usize::from(i % 10 == 1));
            send_chatbrick(&client, addr, &id, &body).await
        });
    }
    let mut accepted = 0;
    while let Some(result) = tasks.join_next().await {
        let (status, json) = result.unwrap();
        assert_eq!(status, 200, "{json}");
        if json["status"] == "accepted" {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 180);
    let received = sink.wait_for(accepted, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = if sink.received().len() > received.len() {
        sink.received()
    } else {
        received
    };
    assert_eq!(
        received.len(),
        accepted,
        "each acknowledged event exactly once"
    );
    let verifier = verifier();
    let mut ids = std::collections::HashSet::new();
    for request in &received {
        let verified = verifier
            .verify(&request.headers, &request.body, now())
            .expect("forwarded request verifies with the route secret");
        assert!(ids.insert(verified.id));
        assert_eq!(request.body.as_ref(), body.as_slice(), "raw provider body");
        assert_eq!(request.headers["x-hookline-source"], "chatbrick");
        assert_eq!(
            request.headers["x-hookline-event-type"],
            "contact.connection.connected"
        );
    }
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn sink_outage_is_retried_until_delivered() {
    let sink = Sink::start().await;
    sink.answer(503);
    let dir = tempfile::tempdir().unwrap();
    let server = start(forwarding(dir.path(), &sink)).await;
    let client = reqwest::Client::new();
    let body = fixture("livedesk/message_created.api_channel_doc.json");
    let (status, _, json) = post_json(
        &client,
        &url(server.public_addr(), &format!("/webhooks/livedesk/{TOKEN}")),
        &[],
        body,
    )
    .await;
    assert_eq!(status, 200);
    let id = json["id"].as_str().unwrap().to_owned();
    // Let several attempts fail.
    let failed = eventually(Duration::from_secs(10), || {
        let client = client.clone();
        let path = format!("/api/events/{id}");
        let server = &server;
        async move {
            let detail = admin_get(&client, server, &path).await;
            let history = detail["deliveries"][0]["history"].as_array()?.clone();
            (history.len() >= 3).then_some(history)
        }
    })
    .await;
    assert!(failed
        .iter()
        .all(|a| a["outcome"] == "retry" && a["http_status"] == 503));
    // Backoff is respected: attempts are spaced by at least half the growing backoff.
    let times: Vec<chrono::DateTime<chrono::Utc>> = failed
        .iter()
        .map(|a| a["started_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!((times[1] - times[0]).num_milliseconds() >= 50);
    assert!((times[2] - times[1]).num_milliseconds() >= 100);
    sink.answer(200);
    let received = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received[0].headers["webhook-id"], id.as_str());
    let detail = eventually(Duration::from_secs(5), || {
        let client = client.clone();
        let path = format!("/api/events/{id}");
        let server = &server;
        async move {
            let detail = admin_get(&client, server, &path).await;
            (detail["status"] == "delivered").then_some(detail)
        }
    })
    .await;
    let history = detail["deliveries"][0]["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["outcome"], "delivered");
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn client_errors_dead_letter_and_replay_delivers() {
    let sink = Sink::start().await;
    sink.answer(400);
    let dir = tempfile::tempdir().unwrap();
    let server = start(forwarding(dir.path(), &sink)).await;
    let client = reqwest::Client::new();
    let (status, json) = send_chatbrick(
        &client,
        server.public_addr(),
        "msg_dead",
        &fixture("chatbrick/store.created.example.json"),
    )
    .await;
    assert_eq!(status, 200);
    let id = json["id"].as_str().unwrap().to_owned();
    let dead = eventually(Duration::from_secs(10), || {
        let client = client.clone();
        let server = &server;
        async move {
            let dead = admin_get(&client, server, "/api/dead-letters").await;
            let list = dead["dead_letters"].as_array()?.clone();
            (!list.is_empty()).then_some(list)
        }
    })
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["event_id"], id.as_str());
    assert_eq!(dead[0]["attempts"], 1, "a 400 is not retried");

    sink.answer(200);
    let delivery_id = dead[0]["id"].as_i64().unwrap();
    let replayed: serde_json::Value = client
        .post(url(
            server.admin_addr(),
            &format!("/api/deliveries/{delivery_id}/replay"),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replayed["replayed"], 1);
    let received = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received[0].headers["webhook-id"], id.as_str());
    // Replaying the whole event delivers it again, with the same id.
    let replayed: serde_json::Value = client
        .post(url(
            server.admin_addr(),
            &format!("/api/events/{id}/replay"),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replayed["replayed"], 1);
    let received = sink.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(received[1].headers["webhook-id"], id.as_str());
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn routes_filter_by_type_glob_and_body_conditions() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = forwarding(dir.path(), &sink);
    let mut outgoing = RouteConfig::everything("sink");
    outgoing.name = Some("outgoing-public".into());
    outgoing.source = Some("livedesk".into());
    outgoing.events = vec!["message_*".into()];
    outgoing
        .when
        .insert("message_type".into(), "outgoing".into());
    outgoing.when.insert("private".into(), false.into());
    let mut connections = RouteConfig::everything("sink");
    connections.name = Some("connections".into());
    connections.events = vec!["contact.connection.*".into()];
    config.routes = vec![outgoing, connections];
    let server = start(config).await;
    let client = reqwest::Client::new();
    let livedesk = url(server.public_addr(), &format!("/webhooks/livedesk/{TOKEN}"));
    let public = fixture("livedesk/message_created.api_channel_doc.json");
    let private = String::from_utf8(public.clone()).unwrap().replace(
        "\"private\": false,\n  \"sender\"",
        "\"private\": true,\n  \"sender\"",
    );
    assert_ne!(private.as_bytes(), public.as_slice());
    for body in [
        public.clone(),
        private.into_bytes(),
        fixture("livedesk/conversation_created.api_channel_doc.json"),
    ] {
        let (status, _, _) = post_json(&client, &livedesk, &[], body).await;
        assert_eq!(status, 200);
    }
    for (i, path) in [
        "chatbrick/contact.connection.disconnected.example.json",
        "chatbrick/store.created.example.json",
    ]
    .iter()
    .enumerate()
    {
        let (status, _) = send_chatbrick(
            &client,
            server.public_addr(),
            &format!("m{i}"),
            &fixture(path),
        )
        .await;
        assert_eq!(status, 200);
    }
    sink.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = sink.received();
    let types: Vec<String> = received
        .iter()
        .map(|r| {
            r.headers["x-hookline-event-type"]
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(received.len(), 2, "{types:?}");
    assert!(types.contains(&"message_created".to_string()));
    assert!(types.contains(&"contact.connection.disconnected".to_string()));
    let unrouted = admin_get(&client, &server, "/api/events?status=unrouted").await;
    assert_eq!(
        unrouted["events"].as_array().unwrap().len(),
        3,
        "stored and visible"
    );
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn full_store_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.store.max_size = 96 * 1024;
    let server = start(config).await;
    let client = reqwest::Client::new();
    let body = fixture("livedesk/message_created.api_channel_doc.json");
    let mut statuses = Vec::new();
    for i in 0..100 {
        let body = String::from_utf8(body.clone())
            .unwrap()
            .replace("2187685", &format!("9{i:06}"));
        let (status, headers, _) = post_json(
            &client,
            &url(server.public_addr(), &format!("/webhooks/livedesk/{TOKEN}")),
            &[],
            body,
        )
        .await;
        if status == 503 {
            assert!(headers.contains_key("retry-after"));
        }
        statuses.push(status);
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    let first_503 = statuses
        .iter()
        .position(|s| *s == 503)
        .expect("store fills up");
    assert!(first_503 > 0, "accepted while there was room");
    let ready = client
        .get(url(server.public_addr(), "/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status().as_u16(),
        503,
        "not ready while the store cannot commit"
    );
    // Readiness comes back by itself, so that a load balancer retries and intake can find out
    // whether the store recovered.
    wait_ready(&client, server.public_addr(), Duration::from_secs(15)).await;
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn locked_store_answers_503_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let client = reqwest::Client::new();
    let body = fixture("chatbrick/store.created.example.json");
    let (status, _) = send_chatbrick(&client, server.public_addr(), "msg_before", &body).await;
    assert_eq!(status, 200);

    // Another process takes the database's write lock: commits fail.
    let db = hookline::store::SqliteStore::db_path(dir.path());
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let locker = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
    });
    locked_rx.recv().unwrap();
    let (status, json) = send_chatbrick(&client, server.public_addr(), "msg_locked", &body).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (503, Some("store_unavailable"))
    );
    release_tx.send(()).unwrap();
    locker.join().unwrap();

    // The sender retries (same id) and now it is committed.
    let (status, json) = send_chatbrick(&client, server.public_addr(), "msg_locked", &body).await;
    assert_eq!((status, json["status"].as_str()), (200, Some("accepted")));
    let ready = client
        .get(url(server.public_addr(), "/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn a_recovered_target_gets_its_waiting_retries_at_once() {
    let sink = Sink::start().await;
    sink.answer(503);
    let dir = tempfile::tempdir().unwrap();
    let mut config = forwarding(dir.path(), &sink);
    // A failed delivery waits at least 10 s (half of 20 s, with jitter) before its retry.
    config.delivery.initial_backoff = Duration::from_secs(20);
    config.delivery.max_backoff = Duration::from_secs(60);
    let server = start(config).await;
    let client = reqwest::Client::new();
    let body = fixture("chatbrick/store.created.example.json");
    let (status, first) = send_chatbrick(&client, server.public_addr(), "msg_waiting", &body).await;
    assert_eq!(status, 200);
    let first = first["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(5), || {
        let client = client.clone();
        let path = format!("/api/events/{first}");
        let server = &server;
        async move {
            let detail = admin_get(&client, server, &path).await;
            (detail["deliveries"][0]["attempts"] == 1
                && detail["deliveries"][0]["state"] == "pending")
                .then_some(())
        }
    })
    .await;

    // The target is back; the next event's success brings the waiting one forward.
    sink.answer(200);
    let (status, _) = send_chatbrick(&client, server.public_addr(), "msg_after", &body).await;
    assert_eq!(status, 200);
    // Well before the 10 s its backoff alone would take.
    let received = sink.wait_for(2, Duration::from_secs(8)).await;
    let ids: Vec<&str> = received
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap())
        .collect();
    assert!(ids.contains(&first.as_str()), "{ids:?}");
    server.shutdown();
    server.wait().await;
}

/// The event's first delivery: the outcome of each attempt, its attempt count and its state.
fn first_delivery(detail: &serde_json::Value) -> (Vec<String>, i64, String) {
    let delivery = &detail["deliveries"][0];
    let outcomes = delivery["history"]
        .as_array()
        .map(|history| {
            history
                .iter()
                .map(|a| a["outcome"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default();
    (
        outcomes,
        delivery["attempts"].as_i64().unwrap_or(-1),
        delivery["state"].as_str().unwrap_or("?").to_owned(),
    )
}

/// Waits until the first delivery of the event at `path` (admin API) is delivered.
async fn once_delivered(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
) -> (Vec<String>, i64, String) {
    eventually(Duration::from_secs(5), || async move {
        let delivery = first_delivery(&admin_get(client, server, path).await);
        (delivery.2 == "delivered").then_some(delivery)
    })
    .await
}

#[tokio::test]
async fn the_log_delivery_is_done_when_the_event_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let client = reqwest::Client::new();
    let body = fixture("chatbrick/store.created.example.json");
    let (status, json) = send_chatbrick(&client, server.public_addr(), "msg_logged", &body).await;
    assert_eq!((status, json["status"].as_str()), (200, Some("accepted")));
    let id = json["id"].as_str().unwrap().to_owned();
    let path = format!("/api/events/{id}");

    // No waiting: the delivery was committed as done together with the event.
    let detail = admin_get(&client, &server, &path).await;
    assert_eq!(
        detail["deliveries"].as_array().unwrap().len(),
        1,
        "{detail}"
    );
    assert_eq!(detail["deliveries"][0]["handler"], "log");
    assert_eq!(
        first_delivery(&detail),
        (vec!["delivered".to_owned()], 1, "delivered".to_owned())
    );
    assert_eq!(detail["status"], "delivered", "{detail}");

    // The provider sending it again is a duplicate: no second delivery.
    let (status, json) = send_chatbrick(&client, server.public_addr(), "msg_logged", &body).await;
    assert_eq!((status, json["status"].as_str()), (200, Some("duplicate")));
    let detail = admin_get(&client, &server, &path).await;
    assert_eq!(
        detail["deliveries"].as_array().unwrap().len(),
        1,
        "{detail}"
    );

    // A replay goes through dispatch, and the history keeps both attempts.
    let delivery_id = detail["deliveries"][0]["id"].as_i64().unwrap();
    let replayed = admin_post(
        &client,
        &server,
        &format!("/api/deliveries/{delivery_id}/replay"),
    )
    .await;
    assert_eq!(replayed["replayed"], 1);
    let replayed = once_delivered(&client, &server, &path).await;
    assert_eq!(
        replayed,
        (
            vec!["delivered".to_owned(), "delivered".to_owned()],
            1,
            "delivered".to_owned()
        )
    );
    server.shutdown();
    server.wait().await;
}

/// A handler that fails its first call, with an error or a panic; at intake or in dispatch.
struct FailsOnce {
    calls: Arc<std::sync::atomic::AtomicUsize>,
    panics: bool,
    at_intake: bool,
}

#[async_trait::async_trait]
impl Handler for FailsOnce {
    async fn handle(&self, _event: &Envelope) -> Result<(), HandlerError> {
        match self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 if self.panics => panic!("a bug in the handler"),
            0 => Err(HandlerError::retryable("not yet")),
            _ => Ok(()),
        }
    }

    fn runs_at_intake(&self) -> bool {
        self.at_intake
    }
}

#[tokio::test]
async fn a_handler_that_fails_or_panics_at_intake_is_retried_by_dispatch() {
    for panics in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handler = FailsOnce {
            calls: calls.clone(),
            panics,
            at_intake: true,
        };
        let server = ServerBuilder::new(config(dir.path()))
            .handler("flaky", handler, 4)
            .route(RouteConfig::everything("flaky"))
            .start()
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let body = fixture("chatbrick/store.created.example.json");
        let (status, json) =
            send_chatbrick(&client, server.public_addr(), "msg_flaky", &body).await;
        assert_eq!(status, 200, "panics: {panics}");
        assert!(
            calls.load(std::sync::atomic::Ordering::SeqCst) >= 1,
            "ran before the answer"
        );
        let path = format!("/api/events/{}", json["id"].as_str().unwrap());
        let delivered = once_delivered(&client, &server, &path).await;
        // The failure at intake is not an attempt of the delivery; dispatch's success is.
        assert_eq!(
            delivered,
            (vec!["delivered".to_owned()], 1, "delivered".to_owned())
        );
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        server.shutdown();
        server.wait().await;
    }
}

#[tokio::test]
async fn a_handler_that_panics_in_dispatch_is_retried_with_the_panic_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.delivery.initial_backoff = Duration::from_millis(100);
    let handler = FailsOnce {
        calls: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        panics: true,
        at_intake: false,
    };
    let server = ServerBuilder::new(config)
        .handler("buggy", handler, 4)
        .route(RouteConfig::everything("buggy"))
        .start()
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let body = fixture("chatbrick/store.created.example.json");
    let (status, json) = send_chatbrick(&client, server.public_addr(), "msg_buggy", &body).await;
    assert_eq!(status, 200);
    let path = format!("/api/events/{}", json["id"].as_str().unwrap());
    let delivered = once_delivered(&client, &server, &path).await;
    assert_eq!(
        delivered,
        (
            vec!["retry".to_owned(), "delivered".to_owned()],
            2,
            "delivered".to_owned()
        )
    );
    let detail = admin_get(&client, &server, &path).await;
    assert_eq!(
        detail["deliveries"][0]["history"][0]["error"],
        "the handler panicked"
    );
    server.shutdown();
    server.wait().await;
}
