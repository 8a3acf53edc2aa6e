//! What the real binary's `/metrics` says, and that it means what docs/deployment.md says.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;

/// Starts the binary with `extra` variables on top of [`hookline_command`]'s, and waits until
/// it is ready.
async fn spawn(dir: &std::path::Path, extra: &[(&str, String)]) -> Process {
    let log = dir.join("hookline.log");
    let mut command = hookline_command(&dir.join("data"), &log);
    command.envs(extra.iter().map(|(k, v)| (k, v)));
    spawn_hookline(command, &log).await
}

/// The admin listener's `/metrics` text.
async fn scrape(admin: SocketAddr) -> String {
    reqwest::get(url(admin, "/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample whose line starts with `series` (name and labels as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// The sum of every sample of metric `name` whose labels contain `label`.
fn total(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_batch_size_counts_events_per_commit_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    sink.answer(503);
    // Every event also goes to a failing forward handler, retried quickly: the writer commits
    // claims and attempt records all along, with no webhook coming in.
    let config = dir.path().join("hookline.toml");
    std::fs::write(
        &config,
        "[delivery]\ninitial_backoff = \"50ms\"\nmax_backoff = \"50ms\"\nmax_attempts = 1000\n",
    )
    .unwrap();
    let process = spawn(
        dir.path(),
        &[
            ("HOOKLINE_CONFIG", config.display().to_string()),
            ("HOOKLINE_FORWARD_URL", sink.url()),
            ("HOOKLINE_FORWARD_SECRET", FORWARD_SECRET.to_owned()),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let body = fixture("chatbrick/store.created.example.json");
    // One at a time: each request's event is a commit of its own.
    for n in 0..3 {
        let id = format!("msg_batch_{n}");
        assert_eq!(
            send_chatbrick(&client, process.public, &id, &body).await.0,
            200
        );
    }
    let events = |text: &str| sample(text, "hookline_store_commit_batch_size_sum");
    let commits = |text: &str| sample(text, "hookline_store_commit_batch_size_count");
    let text = scrape(process.admin).await;
    assert_eq!(
        (events(&text), commits(&text)),
        (Some(3.0), Some(3.0)),
        "{text}"
    );

    // Dozens of retries later, each a claim and an attempt record committed by the writer…
    let retries = |text: &str| {
        total(
            text,
            "hookline_delivery_attempts_total",
            "outcome=\"retry\"",
        )
    };
    let later = eventually(Duration::from_secs(30), || async move {
        let text = scrape(process.admin).await;
        (retries(&text) >= 30.0).then_some(text)
    })
    .await;
    // …it still says three events, in three commits.
    assert_eq!(
        (events(&later), commits(&later)),
        (Some(3.0), Some(3.0)),
        "{later}"
    );
}
