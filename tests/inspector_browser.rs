//! The inspector in a real browser: Debian's Chromium, headless, driven through chromedriver
//! (both installed by `.ci/install-deps`) with WebDriver. An operator logs in, watches signed
//! events arrive without reloading, filters, opens an event, replays a dead letter from the
//! page; markup inside provider payloads runs nothing; pages without a session go to the login
//! page; a form on another origin replays nothing.
//!
//! Every test saves screenshots (PNG) into `target/tmp/inspector-screenshots/`, or into the
//! directory named by `HOOKLINE_SCREENSHOTS` (`HOOKLINE_SCREENSHOTS=docs/img` makes the ones
//! the README shows).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use hookline::config::RouteConfig;
use hookline::server::Server;
use serde_json::json;

/// One browser at a time: two cores cannot run several Chromiums and the servers quickly.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long the page may take to show what a test waits for: generous, since CI runs the
/// browser, the server and other test binaries on two busy cores (15 s once ran out there).
const PATIENCE: Duration = Duration::from_secs(60);

/// chromedriver and the headless Chromium it drives; chromedriver is killed on drop (and its
/// browser with it), the profile directory removed.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and a fresh headless Chromium through it.
    async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; .ci/install-deps installs it)");
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let mut options = json!({ "args": args });
        if std::path::Path::new("/usr/bin/chromium").exists() {
            options["binary"] = "/usr/bin/chromium".into();
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let webdriver = format!("http://127.0.0.1:{port}");
        let client = eventually(PATIENCE, || {
            let capabilities = capabilities.clone();
            let webdriver = webdriver.clone();
            async move {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                ClientBuilder::new(connector)
                    .capabilities(capabilities)
                    .connect(&webdriver)
                    .await
                    .ok()
            }
        })
        .await;
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Opens a page of the admin listener.
    async fn open(&self, admin: SocketAddr, path: &str) {
        self.client.goto(&url(admin, path)).await.unwrap();
    }

    /// The path (and query) the browser is on.
    async fn path(&self) -> String {
        let current = self.client.current_url().await.unwrap();
        match current.query() {
            Some(query) => format!("{}?{query}", current.path()),
            None => current.path().to_owned(),
        }
    }

    /// The visible text of the page's `main` (empty while a page is being replaced).
    async fn text(&self) -> String {
        match self.client.find(Locator::Css("main")).await {
            Ok(main) => main.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the page's text contains `wanted`; returns that text.
    async fn wait_for_text(&self, wanted: &str) -> String {
        eventually(PATIENCE, || async {
            let text = self.text().await;
            text.contains(wanted).then_some(text)
        })
        .await
    }

    /// Logs in through the login form the browser is on; returns once the browser has left the
    /// login page (a submit can return before the navigation it starts has happened).
    async fn log_in(&self) {
        let form = self.client.form(Locator::Css("form")).await.unwrap();
        form.set_by_name("token", ADMIN_TOKEN).await.unwrap();
        form.submit().await.unwrap();
        self.wait_for_path(|path| !path.starts_with("/login")).await;
    }

    /// Reloads the page until its text contains `wanted` (what a page shows changes only when
    /// it is loaded again); returns that text.
    async fn reload_until(&self, wanted: &str) -> String {
        eventually(PATIENCE, || async {
            self.client.refresh().await.unwrap();
            let text = self.text().await;
            text.contains(wanted).then_some(text)
        })
        .await
    }

    /// Waits until the page's path and query satisfy `wanted`; returns them.
    async fn wait_for_path(&self, wanted: impl Fn(&str) -> bool) -> String {
        eventually(PATIENCE, || async {
            let path = self.path().await;
            wanted(&path).then_some(path)
        })
        .await
    }

    /// Clicks the element that `css` selects.
    async fn click(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        element.click().await.unwrap();
    }

    /// Saves a screenshot of the page as `<name>.png`.
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = std::env::var_os("HOOKLINE_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inspector-screenshots")
            });
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Whether the page opened an alert (a script from a payload ran).
    async fn alert_opened(&self) -> bool {
        self.client.get_alert_text().await.is_ok()
    }

    /// Ends the browser session.
    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A sink that answers 400, so that every event dies at its first attempt, and a server with an
/// admin token that forwards every event to it.
async fn server_with_dead_letters(dir: &std::path::Path) -> (Sink, Server) {
    let sink = Sink::start().await;
    sink.answer(400);
    let server = server_to(&sink, dir).await;
    (sink, server)
}

/// A server that forwards every event to `sink`, with an admin token.
async fn server_to(sink: &Sink, dir: &std::path::Path) -> Server {
    let mut config = config_with_token(dir);
    config.handlers.insert("crm".into(), forward_to(sink, 4));
    config.routes = vec![RouteConfig::everything("crm")];
    start(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_logs_in_sees_new_events_arrive_filters_and_opens_one() {
    let _one = ONE_BROWSER.lock().await;
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = server_to(&sink, dir.path()).await;
    let admin = server.admin_addr();
    let http = reqwest::Client::new();
    let (_, first) = send_chatbrick(
        &http,
        server.public_addr(),
        "msg_browser_first",
        &fixture("chatbrick/contact.connection.connected.store_and_staff.json"),
    )
    .await;
    let browser = Browser::start().await;

    browser.open(admin, "/events").await;
    assert!(
        browser.path().await.starts_with("/login"),
        "{}",
        browser.path().await
    );
    browser.screenshot("login").await;
    browser.log_in().await;
    assert_eq!(browser.path().await, "/events");
    browser.wait_for_text(first["id"].as_str().unwrap()).await;

    // Events sent now appear in the open list, without a reload.
    browser
        .client
        .execute("window.stillTheSamePage = true;", vec![])
        .await
        .unwrap();
    let (_, second) = send_chatbrick(
        &http,
        server.public_addr(),
        "msg_browser_second",
        &fixture("chatbrick/store.updated.example.json"),
    )
    .await;
    let (_, third) = send_livedesk(
        &http,
        server.public_addr(),
        "browser-third",
        &livedesk_message("Test", "hello", 42218348),
    )
    .await;
    browser.wait_for_text(second["id"].as_str().unwrap()).await;
    let text = browser.wait_for_text(third["id"].as_str().unwrap()).await;
    assert!(text.contains("new events since the page loaded"), "{text}");
    let same = browser
        .client
        .execute("return window.stillTheSamePage === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same, json!(true), "the page was not reloaded");
    browser.screenshot("events").await;

    // Filter by source: only liveDesk's event is left.
    let form = browser
        .client
        .form(Locator::Css("form.filters"))
        .await
        .unwrap();
    let source = browser.client.find(Locator::Id("source")).await.unwrap();
    source.select_by_value("livedesk").await.unwrap();
    form.submit().await.unwrap();
    browser
        .wait_for_path(|path| path.contains("source=livedesk"))
        .await;
    let text = browser.wait_for_text(third["id"].as_str().unwrap()).await;
    assert!(
        !text.contains(first["id"].as_str().unwrap())
            && !text.contains(second["id"].as_str().unwrap()),
        "{text}"
    );

    // One event: its card, its body and its attempts.
    browser.open(admin, "/events?source=chatbrick").await;
    browser
        .click(&format!(
            "a[href='/events/{}']",
            first["id"].as_str().unwrap()
        ))
        .await;
    let text = browser.wait_for_text("Key fields").await;
    for shown in [
        "clrq5ca80000lb9c9dnxxfyid",
        "U4d26836f2aadb5ad84cc8b5b729fc9a1",
        "台北101旗艦店",
        "\"lineProviderId\": \"1660894172\"",
        "delivered",
    ] {
        assert!(text.contains(shown), "{shown} missing from:\n{text}");
    }
    let attempts = browser
        .client
        .find_all(Locator::Css("table.attempts tbody tr"))
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    browser.screenshot("event").await;

    browser.open(admin, "/").await;
    let text = browser.wait_for_text("Events, last hour").await;
    assert!(text.contains("chatbrick") && text.contains("livedesk"));
    browser.screenshot("overview").await;
    browser.close().await;
    server.shutdown();
    server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_delivery_is_replayed_from_the_dead_letters_page_and_delivered() {
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (sink, server) = server_with_dead_letters(dir.path()).await;
    let admin = server.admin_addr();
    let http = reqwest::Client::new();
    let (_, one) = send_chatbrick(
        &http,
        server.public_addr(),
        "msg_dead_one",
        &fixture("chatbrick/account.created.example.json"),
    )
    .await;
    let (_, two) = send_chatbrick(
        &http,
        server.public_addr(),
        "msg_dead_two",
        &fixture("chatbrick/store.deactivated.example.json"),
    )
    .await;
    let browser = Browser::start().await;
    browser.open(admin, "/dead-letters").await;
    browser.log_in().await;
    let text = browser.reload_until("2 dead letters").await;
    assert!(text.contains("HTTP 400") || text.contains("400"), "{text}");
    browser.screenshot("dead-letters").await;
    sink.answer(200);

    // Replay one from its row.
    let one_id = one["id"].as_str().unwrap();
    browser
        .click(&format!("button[aria-label$='of {one_id}']"))
        .await;
    browser.wait_for_text("Replayed 1 delivery").await;
    let received = sink.wait_for(1, PATIENCE).await;
    assert_eq!(received[0].headers["webhook-id"], one_id);

    // Replay the rest after the confirmation that says how many.
    browser
        .click("form[action='/dead-letters/replay'] button")
        .await;
    let text = browser.wait_for_text("Replay 1 dead letter?").await;
    assert!(text.contains("fresh retry budget"));
    browser.screenshot("replay-confirmation").await;
    browser.click("button.danger").await;
    browser.wait_for_text("Replayed 1 delivery").await;
    let received = sink.wait_for(2, PATIENCE).await;
    assert_eq!(
        received[1].headers["webhook-id"],
        two["id"].as_str().unwrap()
    );

    // The event page shows the whole history: the failure, then the success.
    browser.open(admin, &format!("/events/{one_id}")).await;
    let text = browser.wait_for_text("Deliveries").await;
    assert!(
        text.contains("dead") && text.contains("delivered") && text.contains("400"),
        "{text}"
    );
    browser.close().await;
    server.shutdown();
    server.wait().await;
}

/// A conversation on an ordered route whose first message dies is listed under "Blocked keys"
/// with its second message waiting; the Skip button lets the second go, and the first stays a
/// dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_conversation_is_skipped_from_the_dead_letters_page() {
    let _one = ONE_BROWSER.lock().await;
    let sink = Sink::start().await;
    sink.answer(400);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_with_token(dir.path());
    config.handlers.insert("crm".into(), forward_to(&sink, 2));
    let mut route = RouteConfig::everything("crm");
    route.order_by = Some("conversation".into());
    config.routes = vec![route];
    let server = start(config).await;
    let (admin, public) = (server.admin_addr(), server.public_addr());
    let http = reqwest::Client::new();
    send_livedesk(&http, public, "blk-1", &livedesk_message("Ann", "first", 5)).await;
    let browser = Browser::start().await;
    browser.open(admin, "/dead-letters").await;
    browser.log_in().await;
    let waiting = |n: &'static str| {
        let browser = &browser;
        async move {
            eventually(PATIENCE, || async {
                browser.client.refresh().await.unwrap();
                let cell = browser
                    .client
                    .find(Locator::Css("table.blocked tbody td:nth-child(5)"))
                    .await
                    .ok()?;
                (cell.text().await.ok()? == n).then_some(())
            })
            .await
        }
    };
    waiting("0").await;
    sink.answer(200);
    send_livedesk(
        &http,
        public,
        "blk-2",
        &livedesk_message("Ann", "second", 5),
    )
    .await;
    waiting("1").await;
    browser.screenshot("blocked-key").await;
    assert!(sink.received().is_empty(), "the second waits for the skip");

    browser.click("table.blocked button").await;
    let text = eventually(PATIENCE, || async {
        let text = browser.text().await;
        (!text.is_empty() && !text.contains("Blocked keys")).then_some(text)
    })
    .await;
    assert!(text.contains("1 dead letter"), "the head stays: {text}");
    let received = sink.wait_for(1, PATIENCE).await;
    assert!(String::from_utf8_lossy(&received[0].body).contains("second"));
    browser.close().await;
    server.shutdown();
    server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_a_contact_name_and_a_message_is_shown_as_text_and_runs_nothing() {
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(config_with_token(dir.path())).await;
    let admin = server.admin_addr();
    let http = reqwest::Client::new();
    let name = "<img src=x onerror=alert(1)>";
    let message = "<script>alert(2)</script> hello";
    let (_, sent) = send_livedesk(
        &http,
        server.public_addr(),
        "xss-browser",
        &livedesk_message(name, message, 5150),
    )
    .await;
    let id = sent["id"].as_str().unwrap();
    let browser = Browser::start().await;
    browser.open(admin, &format!("/events/{id}")).await;
    browser.log_in().await;

    let text = browser.wait_for_text("Key fields").await;
    assert!(!browser.alert_opened().await, "a script ran");
    assert!(text.contains(name), "the name is shown literally:\n{text}");
    assert!(text.contains(message), "the message is shown literally");
    let injected = browser
        .client
        .execute(
            "return document.querySelectorAll('main img, main script').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(injected, json!(0), "no element was made from the payload");
    browser.screenshot("markup-as-text").await;

    browser.open(admin, "/events").await;
    browser.wait_for_text(id).await;
    assert!(!browser.alert_opened().await);
    browser.open(admin, &format!("/events?q={id}")).await;
    browser.wait_for_text("Key fields").await;
    assert!(!browser.alert_opened().await);
    browser.close().await;
    server.shutdown();
    server.wait().await;
}

/// Serves one page on another origin (another port of this host): a form that posts to the
/// inspector's replay of dead letters, as a page on another site would.
async fn foreign_site(admin: SocketAddr) -> SocketAddr {
    let page = format!(
        "<!DOCTYPE html><form method=post action='http://{admin}/dead-letters/replay'>\
         <input name=confirm value=1><input name=csrf value=guessed>\
         <button id=go>Win a prize</button></form>"
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::response::Html(page) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_without_a_session_go_to_login_and_a_cross_site_form_replays_nothing() {
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (sink, server) = server_with_dead_letters(dir.path()).await;
    let admin = server.admin_addr();
    let http = reqwest::Client::new();
    let (_, sent) = send_chatbrick(
        &http,
        server.public_addr(),
        "msg_csrf_browser",
        &fixture("chatbrick/store.created.example.json"),
    )
    .await;
    let id = sent["id"].as_str().unwrap();
    let browser = Browser::start().await;

    for page in [
        "/",
        "/events",
        &format!("/events/{id}"),
        &format!("/events/{id}/body"),
        "/dead-letters",
    ] {
        browser.open(admin, page).await;
        assert!(
            browser.path().await.starts_with("/login?next="),
            "{page} -> {}",
            browser.path().await
        );
        let text = browser.text().await;
        assert!(
            !text.contains(id) && text.contains("Admin token"),
            "{page}: {text}"
        );
    }
    browser.log_in().await;
    assert_eq!(browser.path().await, "/dead-letters");
    browser.reload_until("1 dead letter").await;
    sink.answer(200);

    // The operator, logged in, visits another site whose form posts to the inspector.
    let foreign = foreign_site(admin).await;
    browser
        .client
        .goto(&format!("http://{foreign}/"))
        .await
        .unwrap();
    browser.click("#go").await;
    let refused = eventually(PATIENCE, || async {
        let body = browser.client.find(Locator::Css("body")).await.ok()?;
        let text = body.text().await.ok()?;
        text.contains("refused").then_some(text)
    })
    .await;
    assert!(refused.contains("cross-site"), "{refused}");
    browser.screenshot("cross-site-refused").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.received().is_empty(), "nothing was replayed");
    browser.open(admin, "/dead-letters").await;
    assert!(browser.text().await.contains("1 dead letter"));

    // Logging out ends the session.
    browser.click("form.logout button").await;
    browser
        .wait_for_path(|path| path.starts_with("/login"))
        .await;
    browser.open(admin, "/events").await;
    assert!(browser.path().await.starts_with("/login"));
    browser.close().await;
    server.shutdown();
    server.wait().await;
}
