//! Three `hookline serve` replicas on one PostgreSQL inbox, end to end, as issue 16 checks a
//! deployment without a single point of failure (docs/high-availability.md): the real binary,
//! configured only through `HOOKLINE_DATABASE_URL`, the forward URL and secret and the admin
//! token; signed ChatBrick and liveDesk traffic spread over the replicas, with about one request
//! in ten sent again to another replica; each replica SIGKILLed once at a seeded random moment
//! and started again; the downstream sink answering 503 for part of the run.
//!
//! Afterwards every acknowledged event has reached the sink, every replica's `GET /api/events`
//! lists each event once, and an event reached the sink twice only when it was being delivered
//! at a kill (the replica died before it could record the success; its lease ran out and
//! another replica delivered it again: at least once).
//!
//! The run is about 20 s of traffic; then the deliveries the killed replicas held wait for their
//! leases (the delivery timeout, 30 s, + 30 s) and the reclaimer (every 15 s): about 90 s in all.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::postgres::Cluster;
use common::*;
use hookline::envelope::event_id;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The seed of every random choice: which replica a request goes to, which are sent again, and
/// when replicas are killed.
const SEED: u64 = 16;
/// Replicas on the one database.
const REPLICAS: usize = 3;
/// Concurrent senders; one in three sends liveDesk events, the others ChatBrick's.
const SENDERS: usize = 12;

/// One replica: its data directory (the PostgreSQL store keeps nothing there, but serve takes
/// its lock) and the process running now, if any.
struct Replica {
    dir: PathBuf,
    starts: usize,
    process: Option<Process>,
}

impl Replica {
    /// Starts (or starts again) `hookline serve` on `database_url`, forwarding to `sink`.
    async fn start(&mut self, database_url: &str, sink: &Sink) -> SocketAddr {
        let log = self.dir.join(format!("serve-{}.log", self.starts));
        self.starts += 1;
        let command = {
            let mut command = hookline_command(&self.dir.join("data"), &log);
            command
                .env("HOOKLINE_DATABASE_URL", database_url)
                .env("HOOKLINE_FORWARD_URL", sink.url())
                .env("HOOKLINE_FORWARD_SECRET", FORWARD_SECRET)
                .env("HOOKLINE_ADMIN_TOKEN", ADMIN_TOKEN);
            command
        };
        let process = spawn_hookline(command, &log).await;
        let public = process.public;
        self.process = Some(process);
        public
    }

    /// SIGKILLs it: no shutdown, no chance to record what it was delivering.
    fn kill(&mut self) {
        let mut process = self.process.take().expect("a running replica");
        process.child.kill().unwrap();
        process.child.wait().unwrap();
    }

    fn admin(&self) -> SocketAddr {
        self.process.as_ref().expect("a running replica").admin
    }
}

/// What the senders saw.
#[derive(Default)]
struct Seen {
    /// Event ids acknowledged with 200 (by the first try or a later one).
    acknowledged: HashSet<String>,
    /// Requests sent again to another replica after a 200.
    resent: usize,
    /// Answers that are neither 200 nor 503, nor a connection a kill broke.
    unexpected: Vec<String>,
}

/// The replicas' current public addresses, as a load balancer knows them.
type Addresses = Arc<Mutex<Vec<SocketAddr>>>;

/// One signed request: ChatBrick's (Svix headers) or liveDesk's (its URL token and delivery id).
fn request(
    client: &reqwest::Client,
    addr: SocketAddr,
    livedesk: bool,
    id: &str,
    body: &[u8],
) -> reqwest::RequestBuilder {
    let (path, headers) = match livedesk {
        true => (
            format!("/webhooks/livedesk/{TOKEN}"),
            vec![("x-chatwoot-delivery".to_owned(), id.to_owned())],
        ),
        false => (
            "/webhooks/chatbrick".to_owned(),
            svix_headers(SECRET, id, now(), body),
        ),
    };
    let mut request = client
        .post(url(addr, &path))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request
}

/// A sender's view of the deployment.
struct Traffic {
    client: reqwest::Client,
    addresses: Addresses,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
}

impl Traffic {
    /// Sends `id` to replica `first`, then to the next ones in turn until one acknowledges it
    /// (as Svix retries, and as a load balancer moves to another upstream), or the run is over.
    /// Returns the replica that acknowledged it.
    async fn deliver(&self, livedesk: bool, id: &str, body: &[u8], first: usize) -> Option<usize> {
        for attempt in 0.. {
            let replica = (first + attempt) % REPLICAS;
            let addr = self.addresses.lock().unwrap()[replica];
            match request(&self.client, addr, livedesk, id, body).send().await {
                Ok(r) if r.status() == 200 => return Some(replica),
                Ok(r) if r.status() == 503 => {}
                Ok(r) => self
                    .seen
                    .lock()
                    .unwrap()
                    .unexpected
                    .push(format!("{id}: {}", r.status())),
                Err(_) => {} // a killed replica; not acknowledged
            }
            if self.stop.load(Ordering::SeqCst) && attempt >= REPLICAS {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        unreachable!("the loop returns")
    }

    /// Sender `n`: new events one after another, each until acknowledged; one in ten then sent
    /// again to a different replica than the one that acknowledged it.
    async fn send(self, n: usize) {
        let mut rng = StdRng::seed_from_u64(SEED * 1000 + n as u64);
        let livedesk = n % 3 == 0;
        let (body, source) = match livedesk {
            true => (
                livedesk_message("Ana", &format!("sender {n}"), n as i64),
                hookline::livedesk::SOURCE,
            ),
            false => (
                fixture("chatbrick/store.created.example.json"),
                hookline::chatbrick::SOURCE,
            ),
        };
        for k in 0.. {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let id = format!("ha_{n}_{k}");
            let first = rng.gen_range(0..REPLICAS);
            let Some(by) = self.deliver(livedesk, &id, &body, first).await else {
                continue;
            };
            let again = rng.gen_bool(0.1);
            {
                let mut seen = self.seen.lock().unwrap();
                seen.acknowledged.insert(event_id(source, &id));
                seen.resent += usize::from(again);
            }
            if again {
                let other = (by + rng.gen_range(1..REPLICAS)) % REPLICAS;
                self.deliver(livedesk, &id, &body, other).await;
            }
        }
    }
}

/// How many times the sink received each event (by the `webhook-id` hookline signs), and when
/// it first did.
fn at_the_sink(sink: &Sink) -> HashMap<String, (usize, Instant)> {
    let mut counts: HashMap<String, (usize, Instant)> = HashMap::new();
    for received in sink.received() {
        let id = received.headers["webhook-id"].to_str().unwrap().to_owned();
        let entry = counts.entry(id).or_insert((0, received.at));
        entry.0 += 1;
        entry.1 = entry.1.min(received.at);
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_killed_under_load_lose_nothing_acknowledged_and_store_it_once() {
    let cluster = Cluster::start();
    let database_url = cluster.url(&cluster.database());
    let sink = Sink::start().await;
    let work = tempfile::tempdir().unwrap();
    let mut replicas: Vec<Replica> = (0..REPLICAS)
        .map(|n| Replica {
            dir: work.path().join(format!("replica{n}")),
            starts: 0,
            process: None,
        })
        .collect();
    let mut addresses = Vec::new();
    for replica in &mut replicas {
        std::fs::create_dir_all(&replica.dir).unwrap();
        addresses.push(replica.start(&database_url, &sink).await);
    }
    let addresses: Addresses = Arc::new(Mutex::new(addresses));

    let (stop, seen) = (
        Arc::new(AtomicBool::new(false)),
        Arc::<Mutex<Seen>>::default(),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut senders = tokio::task::JoinSet::new();
    for n in 0..SENDERS {
        let traffic = Traffic {
            client: client.clone(),
            addresses: addresses.clone(),
            stop: stop.clone(),
            seen: seen.clone(),
        };
        senders.spawn(traffic.send(n));
    }

    // Each replica killed once, in a seeded order at seeded moments, and started again; the
    // sink down from just after the first restart until just after the second.
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut victims: Vec<usize> = (0..REPLICAS).collect();
    rand::seq::SliceRandom::shuffle(&mut victims[..], &mut rng);
    let mut kills = Vec::new();
    for (round, &victim) in victims.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1500..4000))).await;
        kills.push(Instant::now());
        replicas[victim].kill();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1500))).await;
        let public = replicas[victim].start(&database_url, &sink).await;
        addresses.lock().unwrap()[victim] = public;
        match round {
            0 => sink.answer(503),
            1 => sink.answer(200),
            _ => {}
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    while let Some(done) = senders.join_next().await {
        done.unwrap();
    }

    let (acknowledged, resent) = {
        let seen = seen.lock().unwrap();
        assert!(seen.unexpected.is_empty(), "{:?}", seen.unexpected);
        (seen.acknowledged.clone(), seen.resent)
    };
    assert!(
        acknowledged.len() > 200,
        "{} acknowledged",
        acknowledged.len()
    );
    assert!(resent > 10, "{resent} sent again");

    // Every acknowledged event reaches the sink; those the killed replicas were delivering once
    // their leases run out.
    eventually(Duration::from_secs(150), || async {
        let at_sink = at_the_sink(&sink);
        acknowledged
            .iter()
            .all(|id| at_sink.contains_key(id))
            .then_some(())
    })
    .await;

    // Stored once: each replica lists the whole inbox, every event once.
    for replica in &replicas {
        let ids = listed_event_ids(replica.admin(), Some(ADMIN_TOKEN)).await;
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for id in &ids {
            *counts.entry(id).or_default() += 1;
        }
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "listed more than once: {twice:?}");
        let listed: HashSet<&str> = counts.keys().copied().collect();
        let missing: Vec<_> = acknowledged
            .iter()
            .filter(|id| !listed.contains(id.as_str()))
            .collect();
        assert!(missing.is_empty(), "acknowledged, not listed: {missing:?}");
    }

    // Delivered twice only when it was being delivered at a kill: first received shortly
    // before one (the sink answers at once; recording the success takes at most the store's
    // operation timeout, 10 s), and at most once more per kill.
    let at_sink = at_the_sink(&sink);
    let twice: Vec<(&String, &(usize, Instant))> =
        at_sink.iter().filter(|(_, (n, _))| *n > 1).collect();
    for (id, (n, first)) in &twice {
        assert!(*n <= 1 + kills.len(), "{id} delivered {n} times");
        let at_a_kill = kills.iter().any(|kill| {
            *first <= *kill + Duration::from_secs(1) && *kill < *first + Duration::from_secs(12)
        });
        assert!(at_a_kill, "{id} delivered {n} times, not around a kill");
    }
    eprintln!(
        "{} acknowledged, {resent} sent again, {} at the sink, {} of them more than once",
        acknowledged.len(),
        at_sink.len(),
        twice.len()
    );
    for replica in &mut replicas {
        replica.kill();
    }
}
