//! The public listener over real HTTP: authentication, status codes, limits, storage of every
//! authentic request (decodable or not).

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHATBRICK_FIXTURES: &[&str] = &[
    "chatbrick/account.created.example.json",
    "chatbrick/account.deactivated.example.json",
    "chatbrick/contact.connection.changed.store_and_staff.json",
    "chatbrick/contact.connection.connected.store_and_staff.json",
    "chatbrick/contact.connection.connected.store_only.json",
    "chatbrick/contact.connection.disconnected.example.json",
    "chatbrick/store.created.example.json",
    "chatbrick/store.deactivated.example.json",
    "chatbrick/store.updated.example.json",
];

const LIVEDESK_FIXTURES: &[&str] = &[
    "livedesk/conversation_created.api_channel_doc.json",
    "livedesk/conversation_status_changed.composed_from_doc.json",
    "livedesk/conversation_updated.composed_from_doc.json",
    "livedesk/message_created.api_channel_doc.json",
    "livedesk/message_updated.composed_from_doc.json",
];

#[tokio::test]
async fn every_chatbrick_fixture_is_accepted_and_duplicates_are_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let client = reqwest::Client::new();
    for (i, path) in CHATBRICK_FIXTURES.iter().enumerate() {
        let body = fixture(path);
        let id = format!("msg_fixture_{i}");
        let (status, json) = send_chatbrick(&client, server.public_addr(), &id, &body).await;
        assert_eq!(status, 200, "{path}: {json}");
        assert_eq!(json["status"], "accepted", "{path}");
        let (status, json) = send_chatbrick(&client, server.public_addr(), &id, &body).await;
        assert_eq!(
            (status, json["status"].as_str()),
            (200, Some("duplicate")),
            "{path}"
        );
    }
    let listed = admin_get(&client, &server, "/api/events?source=chatbrick&limit=100").await;
    assert_eq!(
        listed["events"].as_array().unwrap().len(),
        CHATBRICK_FIXTURES.len()
    );
    let types: Vec<&str> = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"contact.connection.changed"));
    assert!(listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["decode_error"].is_null()));
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn standard_webhooks_header_family_and_rotation_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.sources.chatbrick.secrets = vec![SECRET.into(), SECRET_2.into()];
    let server = start(config).await;
    let client = reqwest::Client::new();
    let body = fixture("chatbrick/store.created.example.json");
    // Signed with the second secret, sent with webhook-* names.
    let headers: Vec<(String, String)> = svix_headers(SECRET_2, "msg_rot", now(), &body)
        .into_iter()
        .map(|(k, v)| (k.replace("svix-", "webhook-"), v))
        .collect();
    let (status, _, json) = post_json(
        &client,
        &url(server.public_addr(), "/webhooks/chatbrick"),
        &headers,
        body,
    )
    .await;
    assert_eq!(status, 200, "{json}");
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn forged_stale_unsigned_and_wrong_secret_requests_get_401() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let client = reqwest::Client::new();
    let target = url(server.public_addr(), "/webhooks/chatbrick");
    let body = fixture("chatbrick/store.created.example.json");

    let mut tampered = body.clone();
    tampered[20] ^= 1;
    let signed = svix_headers(SECRET, "msg_t", now(), &body);
    let (status, _, json) = post_json(&client, &target, &signed, tampered).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("bad_signature"))
    );

    let stale = svix_headers(SECRET, "msg_s", now() - 301, &body);
    let (status, _, json) = post_json(&client, &target, &stale, body.clone()).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("stale_timestamp"))
    );

    let future = svix_headers(SECRET, "msg_f", now() + 301, &body);
    let (status, _, json) = post_json(&client, &target, &future, body.clone()).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("stale_timestamp"))
    );

    let (status, _, json) = post_json(&client, &target, &[], body.clone()).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("missing_header"))
    );

    let wrong = svix_headers(SECRET_2, "msg_w", now(), &body);
    let (status, _, json) = post_json(&client, &target, &wrong, body.clone()).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("bad_signature"))
    );

    let listed = admin_get(&client, &server, "/api/events").await;
    assert!(
        listed["events"].as_array().unwrap().is_empty(),
        "nothing stored"
    );
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn unknown_types_and_undecodable_bodies_are_stored_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let client = reqwest::Client::new();
    let unknown = br#"{"type":"coupon.redeemed","data":{"coupon":{"id":"c1"}}}"#;
    let (status, _) = send_chatbrick(&client, server.public_addr(), "msg_u1", unknown).await;
    assert_eq!(status, 200);
    let misfit = br#"{"type":"store.created","data":{"store":{"id":{"nested":true}}}}"#;
    let (status, _) = send_chatbrick(&client, server.public_addr(), "msg_u2", misfit).await;
    assert_eq!(status, 200);
    let garbage = b"\x00\x01 not json at all";
    let (status, json) = send_chatbrick(&client, server.public_addr(), "msg_u3", garbage).await;
    assert_eq!(status, 200);

    let flagged = admin_get(&client, &server, "/api/events?status=undecodable").await;
    let flagged = flagged["events"].as_array().unwrap();
    assert_eq!(flagged.len(), 2);
    let types: Vec<&str> = flagged
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["unknown", "store.created"]);
    assert!(flagged.iter().all(|e| e["decode_error"].is_string()));

    let detail = admin_get(
        &client,
        &server,
        &format!("/api/events/{}", json["id"].as_str().unwrap()),
    )
    .await;
    assert!(detail["body"].as_str().unwrap().contains("not json at all"));
    let all = admin_get(&client, &server, "/api/events?type=coupon.redeemed").await;
    assert_eq!(all["events"][0]["decode_error"], serde_json::Value::Null);
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn named_endpoints_have_their_own_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config
        .sources
        .chatbrick
        .endpoints
        .push(hookline::config::ChatbrickEndpoint {
            name: "orders".into(),
            secrets: vec![SECRET_2.into()],
        });
    let server = start(config).await;
    let client = reqwest::Client::new();
    let body = fixture("chatbrick/store.updated.example.json");
    let target = url(server.public_addr(), "/webhooks/chatbrick/orders");
    let (status, _, _) = post_json(
        &client,
        &target,
        &svix_headers(SECRET, "m1", now(), &body),
        body.clone(),
    )
    .await;
    assert_eq!(
        status, 401,
        "the default endpoint's secret does not open another endpoint"
    );
    let (status, _, _) = post_json(
        &client,
        &target,
        &svix_headers(SECRET_2, "m1", now(), &body),
        body.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = post_json(
        &client,
        &url(server.public_addr(), "/webhooks/chatbrick/nope"),
        &svix_headers(SECRET, "m2", now(), &body),
        body,
    )
    .await;
    assert_eq!(status, 404);
    let listed = admin_get(&client, &server, "/api/events").await;
    assert_eq!(listed["events"][0]["endpoint"], "orders");
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn livedesk_token_and_chatwoot_signature() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let client = reqwest::Client::new();
    for path in LIVEDESK_FIXTURES {
        let (status, _, json) = post_json(
            &client,
            &url(server.public_addr(), &format!("/webhooks/livedesk/{TOKEN}")),
            &[],
            fixture(path),
        )
        .await;
        assert_eq!(
            (status, json["status"].as_str()),
            (200, Some("accepted")),
            "{path}"
        );
    }
    // The same body again, without a delivery id, is recognised by its hash.
    let (status, _, json) = post_json(
        &client,
        &url(server.public_addr(), &format!("/webhooks/livedesk/{TOKEN}")),
        &[],
        fixture(LIVEDESK_FIXTURES[0]),
    )
    .await;
    assert_eq!((status, json["status"].as_str()), (200, Some("duplicate")));
    let (status, _, json) = post_json(
        &client,
        &url(
            server.public_addr(),
            "/webhooks/livedesk/wrong-token-0123456789",
        ),
        &[],
        fixture(LIVEDESK_FIXTURES[0]),
    )
    .await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("unknown_token"))
    );
    server.shutdown();
    server.wait().await;

    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.sources.livedesk.secret = Some("chatwoot-signing-secret".into());
    let server = start(config).await;
    let target = url(server.public_addr(), &format!("/webhooks/livedesk/{TOKEN}"));
    let body = fixture("livedesk/message_created.api_channel_doc.json");
    let (status, _, json) = post_json(&client, &target, &[], body.clone()).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("missing_header"))
    );
    let signed: Vec<(String, String)> =
        hookline::send::livedesk_headers(Some("chatwoot-signing-secret"), &body)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    let (status, _, _) = post_json(&client, &target, &signed, body.clone()).await;
    assert_eq!(status, 200);
    let wrong: Vec<(String, String)> = hookline::send::livedesk_headers(Some("other"), &body)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let (status, _, json) = post_json(&client, &target, &wrong, body).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("bad_signature"))
    );
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn http_level_errors_never_5xx_and_never_410() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.body_limit = 4096;
    config.sources.livedesk.token = None;
    let server = start(config).await;
    let client = reqwest::Client::new();
    let big = vec![b'x'; 5000];
    let (status, _, json) = post_json(
        &client,
        &url(server.public_addr(), "/webhooks/chatbrick"),
        &svix_headers(SECRET, "m_big", now(), &big),
        big,
    )
    .await;
    assert_eq!(
        (status, json["error"].as_str()),
        (413, Some("body_too_large"))
    );

    let get = client
        .get(url(server.public_addr(), "/webhooks/chatbrick"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let missing = client
        .get(url(server.public_addr(), "/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    // liveDesk is off in this configuration: its endpoint does not exist.
    let (status, _, _) = post_json(
        &client,
        &url(server.public_addr(), &format!("/webhooks/livedesk/{TOKEN}")),
        &[],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 404);
    for path in ["/healthz", "/readyz"] {
        let response = client
            .get(url(server.public_addr(), path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert!(response.headers().contains_key("x-request-id"));
    }
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.header_timeout = Duration::from_millis(300);
    config.request_timeout = Duration::from_millis(500);
    let server = start(config).await;

    // Headers that never finish: the connection is closed.
    let mut stream = tokio::net::TcpStream::connect(server.public_addr())
        .await
        .unwrap();
    stream
        .write_all(b"POST /webhooks/chatbrick HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "connection with stalled headers was not closed"
    );

    // A body that trickles: 408.
    let mut stream = tokio::net::TcpStream::connect(server.public_addr())
        .await
        .unwrap();
    stream
        .write_all(b"POST /webhooks/chatbrick HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answer within the timeout")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");

    // Meanwhile a normal client is served.
    let client = reqwest::Client::new();
    let (status, _) = send_chatbrick(
        &client,
        server.public_addr(),
        "msg_ok",
        &fixture("chatbrick/store.created.example.json"),
    )
    .await;
    assert_eq!(status, 200);
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn base_path_prefixes_every_public_route() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.base_path = "/hooks".into();
    let server = start(config).await;
    let client = reqwest::Client::new();
    let body = fixture("chatbrick/store.created.example.json");
    let (status, _, _) = post_json(
        &client,
        &url(server.public_addr(), "/hooks/webhooks/chatbrick"),
        &svix_headers(SECRET, "m_bp", now(), &body),
        body.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = post_json(
        &client,
        &url(server.public_addr(), "/webhooks/chatbrick"),
        &svix_headers(SECRET, "m_bp2", now(), &body),
        body,
    )
    .await;
    assert_eq!(status, 404);
    let ready = client
        .get(url(server.public_addr(), "/hooks/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn overload_is_answered_with_503_and_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.max_concurrent_requests = 1;
    config.request_timeout = Duration::from_secs(5);
    let server = start(config).await;
    // Occupy the only slot with a request whose body never completes.
    let (stalled, _) = hold_the_slot(&server, "m_slot").await;
    assert_chatbrick_is_refused(&reqwest::Client::new(), &server, "m_over").await;
    drop(stalled);
    server.shutdown();
    server.wait().await;
}

/// Sends a ChatBrick request and checks that it is refused as overloaded, with `Retry-After`.
async fn assert_chatbrick_is_refused(
    client: &reqwest::Client,
    server: &hookline::server::Server,
    id: &str,
) {
    let body = fixture("chatbrick/store.created.example.json");
    let (status, headers, json) = post_json(
        client,
        &url(server.public_addr(), "/webhooks/chatbrick"),
        &svix_headers(SECRET, id, now(), &body),
        body,
    )
    .await;
    assert_eq!((status, json["error"].as_str()), (503, Some("overloaded")));
    assert!(headers.contains_key("retry-after"));
}

/// Starts a ChatBrick request that takes a request slot and holds it until the rest of its
/// body is written to the returned stream.
async fn hold_the_slot(
    server: &hookline::server::Server,
    id: &str,
) -> (tokio::net::TcpStream, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(server.public_addr())
        .await
        .unwrap();
    let body = fixture("chatbrick/store.created.example.json");
    let head = svix_headers(SECRET, id, now(), &body)
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect::<String>();
    stream
        .write_all(
            format!(
                "POST /webhooks/chatbrick HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream.write_all(&body[..1]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    (stream, body[1..].to_vec())
}

#[tokio::test]
async fn livedesk_waits_for_a_slot_that_chatbrick_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.max_concurrent_requests = 1;
    config.sources.livedesk.overload_wait = Duration::from_secs(30);
    let server = start(config).await;
    let (mut holder, rest) = hold_the_slot(&server, "m_holder").await;
    let client = reqwest::Client::new();
    // liveDesk never retries a 503, so it waits for the slot...
    let livedesk = tokio::spawn({
        let client = client.clone();
        let target = url(server.public_addr(), &format!("/webhooks/livedesk/{TOKEN}"));
        async move {
            post_json(
                &client,
                &target,
                &[],
                fixture("livedesk/message_created.api_channel_doc.json"),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !livedesk.is_finished(),
        "liveDesk was answered while the slot was busy"
    );
    // ...while ChatBrick, which retries, is refused at once, even though it came later.
    assert_chatbrick_is_refused(&client, &server, "m_refused").await;
    // A wrong token is refused without waiting: only what passes the checks that need no body
    // waits for a slot.
    let forged_url = url(
        server.public_addr(),
        "/webhooks/livedesk/wrong-token-0123456789",
    );
    let forged = post_json(
        &client,
        &forged_url,
        &[],
        fixture("livedesk/message_created.api_channel_doc.json"),
    );
    let (status, _, json) = tokio::time::timeout(Duration::from_secs(10), forged)
        .await
        .expect("a forged request must not wait for a slot");
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("unknown_token"))
    );
    // Once the slot is free, the waiting liveDesk request gets it and is stored.
    holder.write_all(&rest).await.unwrap();
    let (status, _, json) = livedesk.await.unwrap();
    assert_eq!((status, json["status"].as_str()), (200, Some("accepted")));
    let mut answer = vec![0; 1024];
    let read = holder.read(&mut answer).await.unwrap();
    assert!(
        answer[..read].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer[..read])
    );
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn livedesk_is_refused_when_no_slot_frees_within_its_wait() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.max_concurrent_requests = 1;
    config.sources.livedesk.overload_wait = Duration::from_millis(300);
    let server = start(config).await;
    let (holder, _) = hold_the_slot(&server, "m_holder").await;
    let (status, headers, json) = post_json(
        &reqwest::Client::new(),
        &url(server.public_addr(), &format!("/webhooks/livedesk/{TOKEN}")),
        &[],
        fixture("livedesk/message_created.api_channel_doc.json"),
    )
    .await;
    assert_eq!((status, json["error"].as_str()), (503, Some("overloaded")));
    assert!(headers.contains_key("retry-after"));
    drop(holder);
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn allow_lists_refuse_other_client_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config
        .allowed_ips
        .insert("chatbrick".into(), vec!["10.0.0.0/8".parse().unwrap()]);
    config
        .allowed_ips
        .insert("livedesk".into(), vec!["127.0.0.0/8".parse().unwrap()]);
    let server = start(config).await;
    let client = reqwest::Client::new();
    let (status, json) = send_chatbrick(
        &client,
        server.public_addr(),
        "msg_ip",
        &fixture("chatbrick/store.created.example.json"),
    )
    .await;
    assert_eq!(
        (status, json["error"].as_str()),
        (403, Some("ip_not_allowed"))
    );
    // Untrusted peers cannot talk their way in with a forwarded header.
    let body = fixture("chatbrick/store.created.example.json");
    let mut headers = svix_headers(SECRET, "msg_ip2", now(), &body);
    headers.push(("x-forwarded-for".into(), "10.1.2.3".into()));
    let (status, _, _) = post_json(
        &client,
        &url(server.public_addr(), "/webhooks/chatbrick"),
        &headers,
        body,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = post_json(
        &client,
        &url(server.public_addr(), &format!("/webhooks/livedesk/{TOKEN}")),
        &[],
        fixture("livedesk/conversation_created.api_channel_doc.json"),
    )
    .await;
    assert_eq!(status, 200);
    server.shutdown();
    server.wait().await;
}
