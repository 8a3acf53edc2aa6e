//! hookline on PostgreSQL, end to end: two servers on one database sharing one inbox, the
//! database stopped under load, and the commands an operator runs (`check-config`, `migrate`,
//! `serve`) never showing the database password. Each test runs a scratch cluster
//! (`common/postgres.rs`).

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::postgres::{Cluster, PASSWORD};
use common::*;
use hookline::config::{Config, RouteConfig};
use hookline::server::ServerBuilder;
use hookline::{Envelope, Handler, HandlerError};

/// A test configuration on `url`, forwarding every event to `sink`.
fn on_postgres(dir: &Path, url: &str, sink: &Sink) -> Config {
    let mut config = config(dir);
    config.store.url = Some(url.parse().expect("a valid URL"));
    config.handlers.insert("sink".into(), forward_to(sink, 8));
    config.routes = vec![RouteConfig::everything("sink")];
    config
}

/// The ids of the events an admin API listing shows.
async fn listed_ids(client: &reqwest::Client, admin: std::net::SocketAddr) -> Vec<String> {
    let listing: serde_json::Value = client
        .get(url(admin, "/api/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = listing["events"]
        .as_array()
        .expect("a list of events")
        .iter();
    events
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A provider's retry that lands on the other replica is a duplicate; each event is forwarded
/// once; either replica's admin API sees the whole inbox.
#[tokio::test]
async fn two_servers_on_one_database_share_one_inbox() {
    let cluster = Cluster::shared();
    let database_url = cluster.url(&cluster.database());
    let sink = Sink::start().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(on_postgres(dir_a.path(), &database_url, &sink)).await;
    let b = start(on_postgres(dir_b.path(), &database_url, &sink)).await;
    let client = reqwest::Client::new();
    let body = br#"{"type":"store.created","data":{"store":{"id":"s1"}}}"#;

    let (status, first) = send_chatbrick(&client, a.public_addr(), "msg_pg1", body).await;
    assert_eq!((status, first["status"].as_str()), (200, Some("accepted")));
    let (status, retry) = send_chatbrick(&client, b.public_addr(), "msg_pg1", body).await;
    assert_eq!((status, retry["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(retry["id"], first["id"]);
    let (status, second) = send_chatbrick(&client, b.public_addr(), "msg_pg2", body).await;
    assert_eq!((status, second["status"].as_str()), (200, Some("accepted")));

    let received = sink.wait_for(2, Duration::from_secs(20)).await;
    let expected = [
        second["id"].as_str().unwrap(),
        first["id"].as_str().unwrap(),
    ];
    for server in [&a, &b] {
        assert_eq!(listed_ids(&client, server.admin_addr()).await, expected);
        let path = format!("/api/events/{}", expected[1]);
        let detail = eventually(Duration::from_secs(10), || async {
            let detail = admin_get(&client, server, &path).await;
            (detail["deliveries"][0]["state"] == "delivered").then_some(detail)
        })
        .await;
        assert_eq!(detail["deliveries"].as_array().unwrap().len(), 1);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.received().len(),
        received.len(),
        "each event forwarded once"
    );

    // A replay through either replica's admin API delivers the event again.
    let replayed = admin_post(&client, &b, &format!("/api/events/{}/replay", expected[1])).await;
    assert_eq!(replayed["replayed"], 1, "{replayed}");
    sink.wait_for(received.len() + 1, Duration::from_secs(20))
        .await;
    for server in [a, b] {
        server.shutdown();
        server.wait().await;
    }
}

/// Holds every event it gets until released: a replica whose handler is busy.
struct Stuck(Arc<tokio::sync::Notify>);

#[async_trait::async_trait]
impl Handler for Stuck {
    async fn handle(&self, _event: &Envelope) -> Result<(), HandlerError> {
        self.0.notified().await;
        Ok(())
    }
}

/// Records the provider ids of the events it gets.
struct Recorder(Arc<Mutex<Vec<String>>>);

#[async_trait::async_trait]
impl Handler for Recorder {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        self.0.lock().unwrap().push(event.provider_id.clone());
        Ok(())
    }
}

/// A replica whose handler has no free slot commits its events pending; the other replica,
/// which has slots, runs them. (Each replica runs the handler under the same name.)
#[tokio::test]
async fn work_committed_on_a_busy_replica_runs_on_one_with_a_free_slot() {
    let cluster = Cluster::shared();
    let database_url = cluster.url(&cluster.database());
    let replica = |dir: &Path| {
        let mut config = config(dir);
        config.store.url = Some(database_url.parse().unwrap());
        config.routes = vec![RouteConfig::everything("work")];
        config.delivery.shutdown_grace = Duration::from_millis(100);
        ServerBuilder::new(config)
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let release = Arc::new(tokio::sync::Notify::new());
    let busy = replica(dir_a.path())
        .handler("work", Stuck(release.clone()), 1)
        .start()
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let free = replica(dir_b.path())
        .handler("work", Recorder(seen.clone()), 4)
        .start()
        .await
        .unwrap();

    let client = reqwest::Client::new();
    let body = br#"{"type":"store.created","data":{}}"#;
    for n in 0..5 {
        let id = format!("msg_busy_{n}");
        let (status, _) = send_chatbrick(&client, busy.public_addr(), &id, body).await;
        assert_eq!(status, 200);
    }
    // The busy replica holds one of them in its only slot; the other replica runs the rest.
    let ran = eventually(Duration::from_secs(20), || async {
        let seen = seen.lock().unwrap().clone();
        (seen.len() >= 4).then_some(seen)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ran_once: HashSet<&String> = ran.iter().collect();
    assert_eq!((ran.len(), ran_once.len()), (4, 4), "{ran:?}");
    assert_eq!(seen.lock().unwrap().len(), 4);

    release.notify_waiters();
    for server in [busy, free] {
        server.shutdown();
        server.wait().await;
    }
}

/// What the load saw of one request: its id, its status, and whether a 503 said when to retry.
#[derive(Debug, Clone)]
struct Answer {
    id: String,
    status: u16,
    retry_after: bool,
    /// Whether the database was stopped for the whole request.
    while_down: bool,
}

/// Where the database is, as the load generator sees it.
const UP: u8 = 0;
const DOWN: u8 = 1;
const COMING_BACK: u8 = 2;

/// Sends signed ChatBrick events with new ids, `senders` at a time spread over `replicas`,
/// until `stop` is set.
async fn load(
    replicas: Vec<std::net::SocketAddr>,
    senders: usize,
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicU8>,
    answers: Arc<Mutex<Vec<Answer>>>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for sender in 0..senders {
        let (client, phase, stop, answers) =
            (client.clone(), phase.clone(), stop.clone(), answers.clone());
        let addr = replicas[sender % replicas.len()];
        tasks.spawn(async move {
            let body = br#"{"type":"store.created","data":{}}"#;
            for n in 0.. {
                if stop.load(Ordering::SeqCst) == 1 {
                    return;
                }
                let id = format!("msg_load_{sender}_{n}");
                let down_before = phase.load(Ordering::SeqCst) == DOWN;
                let headers = svix_headers(SECRET, &id, now(), body);
                let (status, headers, _) = post_json(
                    &client,
                    &url(addr, "/webhooks/chatbrick"),
                    &headers,
                    body.to_vec(),
                )
                .await;
                let while_down = down_before && phase.load(Ordering::SeqCst) == DOWN;
                let retry_after = headers.contains_key("retry-after");
                let answer = Answer {
                    id,
                    status,
                    retry_after,
                    while_down,
                };
                answers.lock().unwrap().push(answer);
                if status != 200 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Whether `/readyz` answers 200.
async fn ready(client: &reqwest::Client, addr: std::net::SocketAddr) -> bool {
    let answer = client.get(url(addr, "/readyz")).send().await;
    answer.is_ok_and(|r| r.status().is_success())
}

/// The database crashes (stopped `immediate`) under load and comes back, with two replicas
/// on it: while it is down intake answers only 503 with `Retry-After` and `/readyz` says 503
/// on each; afterwards acceptance resumes by itself, and every event acknowledged is in the
/// database. The servers are the real binary, whose log never shows the database password.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_under_load_answers_503_and_loses_nothing_acknowledged() {
    let cluster = Arc::new(Cluster::start());
    let database = cluster.database();
    let (work, work_2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut server, public, log) = serve(work.path(), &cluster.url(&database)).await;
    let (mut server_2, public_2, log_2) = serve(work_2.path(), &cluster.url(&database)).await;
    let client = reqwest::Client::new();
    for replica in [public, public_2] {
        wait_ready(&client, replica, Duration::from_secs(10)).await;
    }

    let (phase, stop) = (Arc::new(AtomicU8::new(UP)), Arc::new(AtomicU8::new(0)));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let load = tokio::spawn(load(
        vec![public, public_2],
        8,
        phase.clone(),
        stop.clone(),
        answers.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let stopping = cluster.clone();
    tokio::task::spawn_blocking(move || stopping.stop("immediate"))
        .await
        .unwrap();
    phase.store(DOWN, Ordering::SeqCst);
    for replica in [public, public_2] {
        eventually(Duration::from_secs(15), || async {
            (!ready(&client, replica).await).then_some(())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    phase.store(COMING_BACK, Ordering::SeqCst);
    let starting = cluster.clone();
    tokio::task::spawn_blocking(move || starting.restart())
        .await
        .unwrap();
    let answered_before = answers.lock().unwrap().len();
    eventually(Duration::from_secs(30), || async {
        let answers = answers.lock().unwrap();
        answers[answered_before..]
            .iter()
            .any(|a| a.status == 200)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(1, Ordering::SeqCst);
    load.await.unwrap();
    for replica in [public, public_2] {
        eventually(Duration::from_secs(15), || async {
            ready(&client, replica).await.then_some(())
        })
        .await;
    }

    let answers = answers.lock().unwrap().clone();
    for answer in &answers {
        assert!(matches!(answer.status, 200 | 503), "{answer:?}");
        assert!(answer.status == 200 || answer.retry_after, "{answer:?}");
        assert!(!answer.while_down || answer.status == 503, "{answer:?}");
    }
    assert!(
        answers.iter().any(|a| a.while_down),
        "requests were refused while it was down"
    );
    let stored: HashSet<String> = cluster
        .psql(&database, "SELECT provider_id FROM events")
        .lines()
        .map(str::to_owned)
        .collect();
    let acknowledged: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    assert!(
        acknowledged.len() > 10,
        "{} acknowledged",
        acknowledged.len()
    );
    for answer in acknowledged {
        assert!(
            stored.contains(&answer.id),
            "acknowledged {} is lost",
            answer.id
        );
    }

    for (server, log) in [(&mut server, &log), (&mut server_2, &log_2)] {
        stop_server(server);
        let logged = std::fs::read_to_string(log).unwrap();
        assert!(logged.contains("cannot commit event"), "{logged}");
        assert!(!logged.contains(PASSWORD), "{logged}");
    }
}

/// Starts `hookline serve` on `database_url`, its data and log in `work`; returns it once it
/// has started, with its public address and its log file.
async fn serve(work: &Path, database_url: &str) -> (Child, std::net::SocketAddr, PathBuf) {
    let log = work.join("hookline.log");
    let server = hookline_command(&work.join("data"), &log)
        .env("HOOKLINE_DATABASE_URL", database_url)
        .spawn()
        .unwrap();
    let (public, _) = eventually(Duration::from_secs(30), || async {
        started_addresses(&std::fs::read_to_string(&log).unwrap_or_default())
    })
    .await;
    (server, public, log)
}

/// Ends `hookline serve` with SIGTERM, as an orchestrator does.
fn stop_server(server: &mut Child) {
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    server.wait().unwrap();
}

/// Runs the `hookline` binary with only these variables.
fn hookline(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookline"));
    command.args(args).env_clear().envs(env.iter().copied());
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_config_shows_the_database_without_its_password() {
    let cluster = Cluster::shared();
    let database = cluster.database();
    let database_url = format!("{}?sslmode=require", cluster.url(&database));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{database_url}\n")).unwrap();
    let from_file = file.path().to_str().unwrap();
    let shown = format!(
        "database          postgres://hookline@127.0.0.1:{}/{database}?sslmode=require (pool 16)",
        cluster.port()
    );
    for variable in [
        ("HOOKLINE_DATABASE_URL", database_url.as_str()),
        ("HOOKLINE_DATABASE_URL_FILE", from_file),
    ] {
        let output = hookline(&["check-config"], &[variable]);
        let printed = text(&output);
        assert!(output.status.success(), "{printed}");
        assert!(printed.contains(&shown), "{printed}");
        assert!(!printed.contains(PASSWORD), "{printed}");
    }
    let bad = database_url.replace("require", "always");
    let output = hookline(&["check-config"], &[("HOOKLINE_DATABASE_URL", &bad)]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(2), "{printed}");
    assert!(printed.contains("HOOKLINE_DATABASE_URL"), "{printed}");
    assert!(!printed.contains(PASSWORD), "{printed}");
    // Checked as serve would open it: a database that does not exist is refused, and nothing
    // is created or migrated by the check.
    let missing = cluster.url("no_such_database");
    let output = hookline(&["check-config"], &[("HOOKLINE_DATABASE_URL", &missing)]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(2), "{printed}");
    assert!(printed.contains("does not exist"), "{printed}");
    assert!(!printed.contains(PASSWORD), "{printed}");
    let tables = cluster.psql(
        &database,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    );
    assert_eq!(tables.trim(), "0", "check-config created tables");
}

/// `hookline migrate` brings a database up to date on its own; `serve` refuses a schema newer
/// than it knows, and one it cannot log in to, saying why without the password.
#[test]
fn migrate_runs_alone_and_serve_refuses_what_it_cannot_use() {
    let cluster = Cluster::shared();
    let database = cluster.database();
    let database_url = cluster.url(&database);
    let env = [("HOOKLINE_DATABASE_URL", database_url.as_str())];
    // One file per version.
    let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/postgres/migrations");
    let latest = std::fs::read_dir(migrations).unwrap().count();
    let first = hookline(&["migrate"], &env);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains(&format!("migrated from version 0 to {latest}")),
        "{}",
        text(&first)
    );
    let again = hookline(&["migrate"], &env);
    assert!(
        text(&again).contains(&format!("at version {latest}, nothing to do")),
        "{}",
        text(&again)
    );

    let dir = tempfile::tempdir().unwrap();
    let serve = |database_url: &str| {
        let data_dir = dir.path().to_str().unwrap();
        hookline(
            &["serve"],
            &[
                ("HOOKLINE_DATABASE_URL", database_url),
                ("HOOKLINE_DATA_DIR", data_dir),
                ("HOOKLINE_LISTEN", "127.0.0.1:0"),
                ("HOOKLINE_ADMIN_LISTEN", "127.0.0.1:0"),
            ],
        )
    };
    let refused = serve(&database_url.replace(PASSWORD, "Not-the-Pw-31337"));
    let printed = text(&refused);
    assert!(!refused.status.success(), "{printed}");
    assert!(
        printed.contains("password authentication failed"),
        "{printed}"
    );
    assert!(!printed.contains("Not-the-Pw-31337"), "{printed}");

    cluster.psql(
        &database,
        "INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')",
    );
    let refused = serve(&database_url);
    let printed = text(&refused);
    assert!(!refused.status.success(), "{printed}");
    assert!(
        printed.contains("version 99, newer than this hookline knows"),
        "{printed}"
    );
    assert!(!printed.contains(PASSWORD), "{printed}");
    let sqlite = hookline(&["migrate"], &[]);
    assert_eq!(sqlite.status.code(), Some(2), "{}", text(&sqlite));
}

/// A database that acknowledges commits before they are on disk is named at start: hookline's
/// 2xx would then not mean durable.
#[tokio::test]
async fn a_database_with_synchronous_commit_off_is_warned_about() {
    let cluster = Cluster::shared();
    let database = cluster.database();
    cluster.psql(
        "postgres",
        &format!("ALTER DATABASE {database} SET synchronous_commit = off"),
    );
    let work = tempfile::tempdir().unwrap();
    let (mut server, _, log) = serve(work.path(), &cluster.url(&database)).await;
    stop_server(&mut server);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("synchronous_commit is off"), "{logged}");
}
