//! A panic on the request path outside any handler is a bug in hookline: the sender gets 500
//! (ChatBrick retries), and the same keep-alive connection serves the next request.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use hookline::server::ServerBuilder;
use hookline::store::*;
use hookline::Envelope;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The SQLite store, except that inserting an event whose provider id is [`PANIC_ID`] panics:
/// a bug planted on the request path, outside any handler.
struct PanickingStore(SqliteStore);

/// The provider id that makes [`PanickingStore::insert`] panic.
const PANIC_ID: &str = "msg_panic";

#[async_trait]
impl Store for PanickingStore {
    async fn insert(
        &self,
        envelope: &Envelope,
        deliveries: Vec<NewDelivery>,
    ) -> Result<InsertOutcome, StoreError> {
        assert_ne!(envelope.provider_id, PANIC_ID, "planted bug");
        self.0.insert(envelope, deliveries).await
    }
    async fn claim(
        &self,
        handler: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.0.claim(handler, limit, lease).await
    }
    async fn finish(&self, id: i64, a: AttemptRecord, next: NextStep) -> Result<(), StoreError> {
        self.0.finish(id, a, next).await
    }
    async fn release_leases(&self, which: Leases) -> Result<u64, StoreError> {
        self.0.release_leases(which).await
    }
    async fn expedite(&self, handler: &str) -> Result<u64, StoreError> {
        self.0.expedite(handler).await
    }
    async fn list_events(&self, filter: EventFilter) -> Result<Vec<EventSummary>, StoreError> {
        self.0.list_events(filter).await
    }
    async fn event(&self, id: &str) -> Result<Option<EventDetail>, StoreError> {
        self.0.event(id).await
    }
    async fn dead_letters(&self, filter: EventFilter) -> Result<Vec<DeliveryInfo>, StoreError> {
        self.0.dead_letters(filter).await
    }
    async fn replay_delivery(&self, id: i64) -> Result<(), StoreError> {
        self.0.replay_delivery(id).await
    }
    async fn replay_event(&self, id: &str, routes: Vec<NewDelivery>) -> Result<u64, StoreError> {
        self.0.replay_event(id, routes).await
    }
    async fn replay_dead(&self, filter: EventFilter) -> Result<u64, StoreError> {
        self.0.replay_dead(filter).await
    }
    async fn prune(&self, window: Duration, retention: Duration) -> Result<PruneStats, StoreError> {
        self.0.prune(window, retention).await
    }
    async fn counts(&self) -> Result<DeliveryCounts, StoreError> {
        self.0.counts().await
    }
    async fn activity(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<MinuteCount>, StoreError> {
        self.0.activity(since).await
    }
    async fn event_types(&self) -> Result<Vec<EventType>, StoreError> {
        self.0.event_types().await
    }
    async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.0.backlog().await
    }
    async fn dead_letter_groups(&self, f: EventFilter) -> Result<DeadLetterGroups, StoreError> {
        self.0.dead_letter_groups(f).await
    }
}

/// Writes one signed ChatBrick request on `stream` and reads its whole response: the status
/// line and the body.
async fn exchange(stream: &mut BufReader<TcpStream>, id: &str) -> (String, String) {
    let body = br#"{"type":"store.created","data":{"store":{"id":"s1"}}}"#;
    let mut request = format!(
        "POST /webhooks/chatbrick HTTP/1.1\r\nhost: hookline\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in svix_headers(SECRET, id, now(), body) {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let stream_ref = stream.get_mut();
    stream_ref.write_all(request.as_bytes()).await.unwrap();
    stream_ref.write_all(body).await.unwrap();
    let mut status = String::new();
    let read = stream.read_line(&mut status).await;
    assert!(
        matches!(read, Ok(n) if n > 0),
        "the connection ended without an answer: {read:?}"
    );
    let mut length = 0;
    loop {
        let mut line = String::new();
        let read = stream.read_line(&mut line).await.unwrap();
        if read == 0 || line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
    (status.trim().to_owned(), String::from_utf8(body).unwrap())
}

#[tokio::test]
async fn a_panic_answers_500_and_the_connection_serves_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = SqliteStore::open(dir.path(), Synchronous::Full, 0).unwrap();
    let server = ServerBuilder::new(config)
        .store(Arc::new(PanickingStore(store)))
        .start()
        .await
        .unwrap();
    let mut stream = BufReader::new(TcpStream::connect(server.public_addr()).await.unwrap());

    let (status, body) = exchange(&mut stream, PANIC_ID).await;
    assert_eq!(status, "HTTP/1.1 500 Internal Server Error");
    assert_eq!(body, r#"{"error":"internal_error"}"#);

    let (status, body) = exchange(&mut stream, "msg_after_the_panic").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.contains("accepted"), "{body}");

    let client = reqwest::Client::new();
    let metrics = client
        .get(url(server.admin_addr(), "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l == "hookline_panics_total 1"),
        "{metrics}"
    );
    server.shutdown();
    server.wait().await;
}
