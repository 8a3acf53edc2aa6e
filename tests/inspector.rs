//! The inspector over real HTTP, as a browser's requests reach it: logins and their cookies,
//! pages without a session, cross-site forms, the security headers, escaping, hidden personal
//! data, lookups and the base path. What needs a real browser (scripts, rendering) is in
//! tests/inspector_browser.rs.

mod common;

use std::time::Duration;

use common::*;
use hookline::config::RouteConfig;
use reqwest::header::{HeaderMap, CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Logs in with `token` at `/login`; returns the response's status and headers.
async fn log_in(
    client: &reqwest::Client,
    admin: std::net::SocketAddr,
    token: &str,
) -> (u16, HeaderMap) {
    log_in_at(client, admin, "/login", token).await
}

/// Logs in with `token` at `path`; returns the response's status and headers.
async fn log_in_at(
    client: &reqwest::Client,
    admin: std::net::SocketAddr,
    path: &str,
    token: &str,
) -> (u16, HeaderMap) {
    let response = client
        .post(url(admin, path))
        .header("origin", format!("http://{admin}"))
        .form(&[("token", token), ("next", "/events")])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.headers().clone())
}

/// The `name=value` of a login's session cookie.
async fn session(client: &reqwest::Client, admin: std::net::SocketAddr) -> String {
    session_at(client, admin, "/login").await
}

/// The `name=value` of the session cookie of a login at `path`.
async fn session_at(client: &reqwest::Client, admin: std::net::SocketAddr, path: &str) -> String {
    let (status, headers) = log_in_at(client, admin, path, ADMIN_TOKEN).await;
    assert_eq!(status, 303);
    let cookie = headers[SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// GETs a page with a cookie; returns status, headers and body.
async fn get(client: &reqwest::Client, target: String, cookie: &str) -> (u16, HeaderMap, String) {
    let response = client
        .get(target)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

/// The value of `name="csrf"` in a page.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn pages_need_a_login_and_show_nothing_of_the_inbox_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config_with_token(dir.path())).await;
    let client = browser();
    let (status, json) = send_chatbrick(
        &client,
        server.public_addr(),
        "msg_secret_page",
        &fixture("chatbrick/store.created.example.json"),
    )
    .await;
    assert_eq!(status, 200);
    let id = json["id"].as_str().unwrap().to_owned();
    let admin = server.admin_addr();

    let pages = [
        "/",
        "/events",
        &format!("/events/{id}"),
        &format!("/events/{id}/body"),
        "/dead-letters",
        "/events/new?after=0",
    ];
    for page in pages {
        for cookie in [
            "",
            "hookline_session=1999999999.00.forged",
            "hookline_session=garbage",
        ] {
            let (status, headers, body) = get(&client, url(admin, page), cookie).await;
            assert_eq!(status, 303, "{page} with {cookie:?}");
            let location = headers[LOCATION].to_str().unwrap();
            assert!(location.starts_with("/login?next="), "{location}");
            assert!(
                !body.contains(&id) && !body.contains("store.created"),
                "{page}: {body}"
            );
        }
    }
    for (path, form) in [
        (format!("/events/{id}/replay"), vec![]),
        ("/dead-letters/replay".into(), vec![("confirm", "1")]),
        ("/logout".into(), vec![]),
    ] {
        let response = client
            .post(url(admin, &path))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303, "{path}");
    }
    // The JSON API keeps its bearer token and knows nothing of sessions.
    let cookie = session(&client, admin).await;
    let (status, _, _) = get(&client, url(admin, "/api/events"), &cookie).await;
    assert_eq!(status, 401);
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn a_login_sets_a_strict_http_only_expiring_cookie_and_logout_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_with_token(dir.path());
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let server = start(config).await;
    let client = browser();
    let admin = server.admin_addr();

    let (status, _) = log_in(&client, admin, "not-the-token").await;
    assert_eq!(status, 401);
    let (status, headers) = log_in(&client, admin, ADMIN_TOKEN).await;
    assert_eq!(status, 303);
    assert_eq!(headers[LOCATION], "/events");
    let cookie = headers[SET_COOKIE].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Max-Age=43200", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure") && !cookie.contains(ADMIN_TOKEN),
        "{cookie}"
    );

    // Through a trusted proxy that terminated TLS, the cookie is Secure.
    let response = client
        .post(url(admin, "/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert!(response.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("; Secure"));

    let session = cookie.split(';').next().unwrap().to_owned();
    let (status, _, page) = get(&client, url(admin, "/"), &session).await;
    assert_eq!(status, 200);
    let logout = client
        .post(url(admin, "/logout"))
        .header("cookie", &session)
        .header("sec-fetch-site", "same-origin")
        .form(&[("csrf", csrf(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status().as_u16(), 303);
    assert!(logout.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (status, _, _) = get(&client, url(admin, "/"), &session).await;
    assert_eq!(status, 303, "a logged-out session is refused");
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn cross_site_forms_and_forms_without_the_csrf_token_replay_nothing() {
    let sink = Sink::start().await;
    sink.answer(400);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_with_token(dir.path());
    config.handlers.insert("sink".into(), forward_to(&sink, 2));
    config.routes = vec![RouteConfig::everything("sink")];
    let server = start(config).await;
    let client = browser();
    let admin = server.admin_addr();
    send_chatbrick(
        &client,
        server.public_addr(),
        "msg_csrf",
        &fixture("chatbrick/store.updated.example.json"),
    )
    .await;
    let cookie = session(&client, admin).await;
    let dead = eventually(Duration::from_secs(10), || {
        let client = client.clone();
        let cookie = cookie.clone();
        async move {
            let (_, _, page) = get(&client, url(admin, "/dead-letters"), &cookie).await;
            page.contains("Replay all 1").then_some(page)
        }
    })
    .await;
    let token = csrf(&dead);
    sink.answer(200);

    let replay = |headers: Vec<(&'static str, String)>, csrf: Option<String>| {
        let mut request = client
            .post(url(admin, "/dead-letters/replay"))
            .header("cookie", &cookie);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut form = vec![("confirm", "1".to_owned())];
        form.extend(csrf.map(|c| ("csrf", c)));
        request.form(&form).send()
    };
    let ours = format!("http://{admin}");
    let refused = [
        (
            vec![("origin", "http://evil.example".to_owned())],
            Some(token.clone()),
        ),
        (
            vec![("sec-fetch-site", "cross-site".to_owned())],
            Some(token.clone()),
        ),
        (
            vec![("sec-fetch-site", "same-site".to_owned())],
            Some(token.clone()),
        ),
        (vec![("origin", ours.clone())], None),
        (vec![("origin", ours.clone())], Some("forged".into())),
    ];
    for (headers, csrf) in refused {
        let response = replay(headers.clone(), csrf).await.unwrap();
        assert_eq!(response.status().as_u16(), 403, "{headers:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.received().is_empty(), "nothing was replayed");

    let response = replay(vec![("origin", ours)], Some(token)).await.unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert!(response.headers()[LOCATION]
        .to_str()
        .unwrap()
        .ends_with("replayed=1"));
    sink.wait_for(1, Duration::from_secs(10)).await;
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn provider_values_are_escaped_text_and_every_response_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config_with_token(dir.path())).await;
    let client = browser();
    let admin = server.admin_addr();
    let name = "<img src=x onerror=alert(1)>";
    let text = "<script>alert(2)</script>";
    let body = livedesk_message(name, text, 4242);
    let (status, json) = send_livedesk(&client, server.public_addr(), "xss-1", &body).await;
    assert_eq!(status, 200);
    let id = json["id"].as_str().unwrap();
    let cookie = session(&client, admin).await;

    let (status, headers, page) = get(&client, url(admin, &format!("/events/{id}")), &cookie).await;
    assert_eq!(status, 200);
    assert!(
        !page.contains(name) && !page.contains(text),
        "raw markup in the page"
    );
    assert!(
        page.contains("&#60;img src=x onerror=alert(1)&#62;"),
        "the name is shown as text"
    );
    assert!(
        page.contains("&#60;script&#62;alert(2)&#60;/script&#62;"),
        "the text is shown as text"
    );
    let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        !page.contains(" style=") && !page.contains("<script>"),
        "no inline style or script"
    );

    let (_, headers, _) = get(&client, url(admin, "/login"), "").await;
    assert!(headers.contains_key(CONTENT_SECURITY_POLICY));
    let script = page
        .split("<script src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let (status, headers, _) = get(&client, url(admin, script), "").await;
    assert_eq!(status, 200);
    assert!(headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(headers.contains_key(CONTENT_SECURITY_POLICY));
    let (status, _, _) = get(&client, url(admin, "/assets/inspector.0000.js"), "").await;
    assert_eq!(status, 404);

    let (_, _, download) = get(&client, url(admin, &format!("/events/{id}/body")), &cookie).await;
    assert_eq!(
        download.as_bytes(),
        body.as_slice(),
        "the download is the exact body"
    );
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn personal_data_can_be_hidden_from_cards_bodies_and_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_with_token(dir.path());
    config.admin.inspector.hide_personal = true;
    let server = start(config).await;
    let client = browser();
    let admin = server.admin_addr();
    let body = livedesk_message("Alice Example", "my card number is 4111", 77);
    let (_, json) = send_livedesk(&client, server.public_addr(), "personal-1", &body).await;
    let id = json["id"].as_str().unwrap();
    let cookie = session(&client, admin).await;

    let (_, _, page) = get(&client, url(admin, &format!("/events/{id}")), &cookie).await;
    for personal in ["Alice Example", "4111", "alice@acme.inc"] {
        assert!(!page.contains(personal), "{personal} shown");
    }
    assert!(page.contains("(hidden)") && page.contains("personal data hidden"));
    assert!(
        page.contains("Conversation id") && page.contains("89"),
        "ids stay"
    );
    let (_, _, download) = get(&client, url(admin, &format!("/events/{id}/body")), &cookie).await;
    assert!(!download.contains("Alice") && !download.contains("4111"));
    serde_json::from_str::<serde_json::Value>(&download).expect("still JSON");
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn lookups_find_events_by_provider_id_and_by_contact_under_a_base_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_with_token(dir.path());
    config.admin.inspector.base_path = "/ops".into();
    let server = start(config).await;
    let client = browser();
    let admin = server.admin_addr();
    let (_, first) = send_livedesk(
        &client,
        server.public_addr(),
        "lookup-a",
        &livedesk_message("A", "one", 9001),
    )
    .await;
    let (_, second) = send_livedesk(
        &client,
        server.public_addr(),
        "lookup-b",
        &livedesk_message("B", "two", 9001),
    )
    .await;
    send_chatbrick(
        &client,
        server.public_addr(),
        "msg_other",
        &fixture("chatbrick/store.created.example.json"),
    )
    .await;
    let cookie = session_at(&client, admin, "/ops/login").await;

    let (status, headers, _) = get(&client, url(admin, "/ops/events?q=lookup-a"), &cookie).await;
    assert_eq!(status, 303);
    assert_eq!(
        headers[LOCATION],
        format!("/ops/events/{}", first["id"].as_str().unwrap())
    );
    let (_, _, about) = get(&client, url(admin, "/ops/events?q=9001"), &cookie).await;
    assert!(
        about.contains(first["id"].as_str().unwrap())
            && about.contains(second["id"].as_str().unwrap())
    );
    assert!(!about.contains("evt_cb_msg_other"));
    let (_, _, none) = get(&client, url(admin, "/ops/events?q=nobody"), &cookie).await;
    assert!(none.contains("No events"));

    for page in [
        "/ops",
        "/ops/",
        "/ops/events?source=chatbrick",
        "/ops/dead-letters",
    ] {
        let (status, _, html) = get(&client, url(admin, page), &cookie).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            html.contains("href=\"/ops/events\""),
            "links keep the base path"
        );
    }
    let (status, _, _) = get(&client, url(admin, "/events"), &cookie).await;
    assert_eq!(status, 404, "nothing outside the base path");
    let api = client
        .get(url(admin, "/api/events"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 200, "the API stays where it is");
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn without_a_token_the_loopback_inspector_is_open_but_forms_still_need_their_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let client = browser();
    let admin = server.admin_addr();
    let (_, json) = send_chatbrick(
        &client,
        server.public_addr(),
        "msg_open",
        &fixture("chatbrick/store.created.example.json"),
    )
    .await;
    let (status, _, page) = get(&client, url(admin, "/"), "").await;
    assert_eq!(status, 200);
    assert!(!page.contains("Log out"));
    let event = format!("/events/{}", json["id"].as_str().unwrap());
    let (status, _, page) = get(&client, url(admin, &event), "").await;
    assert_eq!(status, 200);
    let (status, headers, _) = get(&client, url(admin, "/login"), "").await;
    assert_eq!((status, headers[LOCATION].to_str().unwrap()), (303, "/"));
    let response = client
        .post(url(admin, "/dead-letters/replay"))
        .form(&[("confirm", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let response = client
        .post(url(admin, "/dead-letters/replay"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("csrf", csrf(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "the confirmation page");
    server.shutdown();
    server.wait().await;
}

/// A key of an ordered route that a dead letter blocks is shown on the dead-letters page with
/// a skip button; the button (a same-origin form with the CSRF token) lets the key go on, and
/// the next delivery of the conversation reaches the sink.
#[tokio::test]
async fn a_blocked_key_is_shown_with_a_skip_button_that_unblocks_it() {
    let sink = Sink::start().await;
    sink.answer(400);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_with_token(dir.path());
    config.handlers.insert("sink".into(), forward_to(&sink, 2));
    let mut route = RouteConfig::everything("sink");
    route.order_by = Some("conversation".into());
    config.routes = vec![route];
    let server = start(config).await;
    let client = browser();
    let admin = server.admin_addr();
    let first = livedesk_message("Ann", "first", 5);
    let (status, _) = send_livedesk(&client, server.public_addr(), "blk-1", &first).await;
    assert_eq!(status, 200);
    let cookie = session(&client, admin).await;
    let page = eventually(Duration::from_secs(10), || {
        let (client, cookie) = (client.clone(), cookie.clone());
        async move {
            let (_, _, page) = get(&client, url(admin, "/dead-letters"), &cookie).await;
            page.contains("Blocked keys").then_some(page)
        }
    })
    .await;
    sink.answer(200);
    let second = livedesk_message("Ann", "second", 5);
    let (status, _) = send_livedesk(&client, server.public_addr(), "blk-2", &second).await;
    assert_eq!(status, 200);
    let action = page
        .split("action=\"")
        .map(|rest| rest.split('"').next().unwrap())
        .find(|action| action.ends_with("/skip"))
        .expect("a skip form")
        .to_owned();
    let skipped = client
        .post(url(admin, &action))
        .header("cookie", &cookie)
        .header("origin", format!("http://{admin}"))
        .form(&[("csrf", csrf(&page)), ("back", "/dead-letters".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(skipped.status(), 303);
    let received = sink.wait_for(1, Duration::from_secs(10)).await;
    assert!(String::from_utf8_lossy(&received[0].body).contains("second"));
    let (_, _, page) = get(&client, url(admin, "/dead-letters"), &cookie).await;
    assert!(!page.contains("Blocked keys"), "{page}");
    assert!(
        page.contains("1 dead letter."),
        "the head stays a dead letter"
    );
}
