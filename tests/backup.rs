//! `hookline backup` under load and `hookline restore`, with the real binary: a server takes
//! signed requests from several senders at once while the backup runs; restored into the data
//! directory, the backup holds every event acknowledged before the backup started.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// Starts `hookline serve` on `data`, logging to `log`.
async fn serve(data: &Path, log: &Path) -> Process {
    spawn_hookline(hookline_command(data, log), log).await
}

/// `hookline <args>` on data directory `data`, to completion.
fn hookline(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(args)
        .env_clear()
        .env("HOOKLINE_DATA_DIR", data)
        .output()
        .unwrap()
}

/// Every event id in the server's inbox, through the admin API, page by page.
async fn stored_ids(admin: SocketAddr) -> BTreeSet<String> {
    listed_event_ids(admin, None).await.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_event_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, &dir.path().join("first.log")).await;
    let public = server.public;

    // Eight senders, each posting signed events one after another, until told to stop.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let body = Arc::new(fixture("chatbrick/store.created.example.json"));
    let client = reqwest::Client::new();
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..8 {
        let (acked, stop, body, client) =
            (acked.clone(), stop.clone(), body.clone(), client.clone());
        senders.spawn(async move {
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let id = format!("msg_backup_{sender}_{n}");
                let (status, json) = send_chatbrick(&client, public, &id, &body).await;
                assert_eq!(status, 200, "{json}");
                acked
                    .lock()
                    .unwrap()
                    .push(json["id"].as_str().unwrap().to_owned());
            }
        });
    }
    eventually(Duration::from_secs(20), || {
        let n = acked.lock().unwrap().len();
        async move { (n >= 200).then_some(()) }
    })
    .await;

    // The backup runs while the senders go on.
    let before_backup: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let file = dir.path().join("backup.db");
    let data_for_backup = data.clone();
    let file_arg = file.display().to_string();
    let backup =
        tokio::task::spawn_blocking(move || hookline(&["backup", &file_arg], &data_for_backup))
            .await
            .unwrap();
    let during = acked.lock().unwrap().len();
    stop.store(true, Ordering::Relaxed);
    while let Some(sender) = senders.join_next().await {
        sender.unwrap();
    }
    let said = String::from_utf8_lossy(&backup.stdout);
    assert!(backup.status.success(), "{backup:?}");
    assert!(said.starts_with("backed up "), "{said}");
    assert!(
        during > before_backup.len(),
        "no request was answered during the backup"
    );

    // Restoring is refused while the server runs on the data directory.
    let refused = hookline(&["restore", &file.display().to_string()], &data);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("another hookline process"), "{why}");

    // Stopped, restored, started again: everything acknowledged before the backup is there.
    drop(server);
    let restored = hookline(&["restore", &file.display().to_string()], &data);
    let said = String::from_utf8_lossy(&restored.stdout);
    assert!(restored.status.success(), "{restored:?}");
    assert!(said.contains("the inbox it replaced is now"), "{said}");
    let server = serve(&data, &dir.path().join("second.log")).await;
    let stored = stored_ids(server.admin).await;
    let missing: Vec<&String> = before_backup.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events missing: {missing:?}",
        missing.len()
    );
    let all: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert!(
        stored.is_subset(&all),
        "the backup holds events nobody sent"
    );
}
