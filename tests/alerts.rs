//! The alert rules of `deploy/prometheus/alerts.yml` watch what hookline really exposes. A real
//! server is taken through every failure the rules are about (forged requests, a wrong token,
//! overload, a dead letter and the ordered key it blocks, a delivery that keeps waiting, a full
//! store and the unreadiness it brings), and its `/metrics` must then have every metric the rules name, and every series that
//! the rules' unit tests (`alerts.test.yml`, run by `promtool test rules` in CI) feed in, with
//! exactly those labels.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;

const RULES: &str = include_str!("../deploy/prometheus/alerts.yml");
const RULE_TESTS: &str = include_str!("../deploy/prometheus/alerts.test.yml");

/// The labels Prometheus adds to every scraped series, which hookline does not expose.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

/// A series as `name{label="value",…}`, split into its name and labels.
fn parse_series(series: &str) -> (String, BTreeMap<String, String>) {
    let (name, rest) = series.split_once('{').unwrap_or((series, "}"));
    let labels = rest
        .trim_end_matches('}')
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("label=value");
            (k.trim().to_owned(), v.trim().trim_matches('"').to_owned())
        })
        .collect();
    (name.trim().to_owned(), labels)
}

/// Every series in a `/metrics` text (comments skipped, value dropped).
fn exposed(metrics: &str) -> Vec<(String, BTreeMap<String, String>)> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| parse_series(line.rsplit_once(' ').expect("series value").0))
        .collect()
}

/// The `hookline_…` metric names in the rules' expressions.
fn metrics_in_rules() -> Vec<String> {
    RULES
        .lines()
        .filter_map(|line| line.trim().strip_prefix("expr:"))
        .flat_map(|expr| {
            expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("hookline_"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The series the rules' unit tests feed in.
fn series_in_rule_tests() -> Vec<(String, BTreeMap<String, String>)> {
    RULE_TESTS
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- series: "))
        .map(|quoted| parse_series(quoted.trim().trim_matches('\'')))
        .collect()
}

/// Fills the request slot (`max_concurrent_requests = 1`) with a request whose body never
/// comes, so that the next ChatBrick request is refused as overloaded. A liveDesk request: when
/// a ChatBrick request has the slot at that moment, it waits for it instead of being refused.
fn hold_the_only_slot(public: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(public).unwrap();
    write!(
        stream,
        "POST /webhooks/livedesk/{TOKEN} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{{"
    )
    .unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_watch_what_hookline_exposes_after_real_failures() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hookline.log");
    let sink = Sink::start().await;
    sink.answer(400); // a client error: dead-lettered at once
    let nowhere = format!("http://127.0.0.1:{}/in", free_port()); // refused: retried
    let config = dir.path().join("hookline.toml");
    std::fs::write(
        &config,
        format!(
            "max_concurrent_requests = 1\n\
             [store]\nmax_size = 98304\n\
             [handlers.crm]\ntype = \"forward\"\nurl = {:?}\nsecret = {FORWARD_SECRET:?}\n\
             [handlers.archive]\ntype = \"forward\"\nurl = {nowhere:?}\nsecret = {FORWARD_SECRET:?}\n\
             [[routes]]\nhandler = \"crm\"\n[[routes]]\nhandler = \"archive\"\n\
             [[routes]]\nname = \"ordered\"\nhandler = \"crm\"\norder_by = \"data.store.id\"\n",
            sink.url()
        ),
    )
    .unwrap();
    let mut command = hookline_command(&dir.path().join("data"), &log);
    command.env("HOOKLINE_CONFIG", &config);
    let process = spawn_hookline(command, &log).await;
    let (public, admin) = (process.public, process.admin);
    let client = reqwest::Client::new();

    // Authentication failures of both providers.
    let body = fixture("chatbrick/store.created.example.json");
    let forged = svix_headers(SECRET_2, "msg_forged", now(), &body);
    let target = url(public, "/webhooks/chatbrick");
    assert_eq!(
        post_json(&client, &target, &forged, body.clone()).await.0,
        401
    );
    let target = url(public, "/webhooks/livedesk/not-the-token-0123456789");
    assert_eq!(
        post_json(&client, &target, &[], b"{}".to_vec()).await.0,
        401
    );

    // One event: dead-lettered by `crm` on two routes (one ordered, whose key it then blocks),
    // waiting (retried) at `archive`.
    assert_eq!(
        send_chatbrick(&client, public, "msg_alerts_1", &body)
            .await
            .0,
        200
    );
    let scrape = || {
        let client = client.clone();
        async move {
            let response = client.get(url(admin, "/metrics")).send().await.ok()?;
            response.text().await.ok()
        }
    };
    eventually(Duration::from_secs(20), || async {
        let text = scrape().await?;
        text.lines()
            .filter(|l| {
                *l == "hookline_deliveries{state=\"dead\"} 2"
                    || *l == "hookline_ordered_blocked_keys{route=\"ordered\"} 1"
            })
            .count()
            .eq(&2)
            .then_some(())
    })
    .await;

    // Overload: the only slot is taken.
    let slot = hold_the_only_slot(public);
    // Once the held request has its slot (it may take a moment), the next one is refused.
    eventually(Duration::from_secs(20), || {
        let (client, body) = (client.clone(), body.clone());
        async move {
            let id = format!("msg_alerts_overloaded_{}", rand_suffix());
            let (status, json) = send_chatbrick(&client, public, &id, &body).await;
            (status == 503 && json["error"] == "overloaded").then_some(())
        }
    })
    .await;
    drop(slot);

    // The store fills up to store.max_size: intake answers 503, and is not ready.
    let big = format!(
        r#"{{"type":"store.created","data":{{"pad":"{}"}}}}"#,
        "x".repeat(8000)
    );
    let full = eventually(Duration::from_secs(30), || {
        let (client, body) = (client.clone(), big.clone());
        async move {
            let id = format!("msg_fill_{}", rand_suffix());
            let (status, json) = send_chatbrick(&client, public, &id, body.as_bytes()).await;
            // Until the held slot is noticed as given up, requests may still be overloaded.
            (status == 503 && json["error"] == "store_unavailable").then_some(json)
        }
    })
    .await;
    assert_eq!(full["error"], "store_unavailable");

    // Within the seconds intake stays unready after a failed commit.
    let metrics = scrape().await.expect("/metrics");
    assert!(metrics.contains("hookline_ready 0"), "{metrics}");
    let series = exposed(&metrics);

    for name in metrics_in_rules() {
        assert!(
            series.iter().any(|(n, _)| *n == name),
            "alerts.yml uses {name}, which hookline does not expose:\n{metrics}"
        );
    }
    let fed = series_in_rule_tests();
    assert!(fed.len() >= 8, "{fed:?}");
    for (name, mut labels) in fed.into_iter().filter(|(n, _)| n.starts_with("hookline_")) {
        for target in TARGET_LABELS {
            labels.remove(target);
        }
        assert!(
            series.iter().any(|(n, l)| *n == name && *l == labels),
            "alerts.test.yml feeds {name}{labels:?}, which hookline does not expose:\n{metrics}"
        );
    }
}

/// A suffix that makes an id unique in this test.
fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
