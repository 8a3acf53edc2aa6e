//! The servers the benchmark runs besides hookline: the baseline (a minimal axum endpoint, in its
//! own process so that it can be pinned like hookline) and the delivery sink (in this process).

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest the sink holds a request while its gate is closed; below hookline's forward timeout
/// (10 s), so that held deliveries succeed instead of timing out and backing off.
const HOLD_MAX: Duration = Duration::from_secs(5);

/// Runs the baseline server on `127.0.0.1:<port>` until killed: `POST /webhooks/chatbrick` and
/// `POST /webhooks/livedesk/<token>` read the whole body and answer 204; `GET /readyz` answers
/// 200. Same runtime and HTTP stack (tokio multi-thread, hyper HTTP/1 through axum,
/// `TCP_NODELAY`) as hookline.
pub fn run_baseline(port: u16) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("baseline: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve_baseline(port)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baseline: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The baseline's router and listener.
async fn serve_baseline(port: u16) -> Result<(), String> {
    let app = Router::new()
        .route("/webhooks/chatbrick", post(accept_body))
        .route("/webhooks/livedesk/{token}", post(accept_body))
        .route("/readyz", get(|| async { StatusCode::OK }));
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on port {port}: {e}"))?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("server failed: {e}"))
}

/// The baseline's whole job: take the body (axum has read all of it), answer 204.
async fn accept_body(body: Bytes) -> StatusCode {
    drop(body);
    StatusCode::NO_CONTENT
}

/// What the sink has received.
#[derive(Debug, Default)]
struct Received {
    /// Distinct `webhook-id`s answered 200.
    ids: HashSet<String>,
    /// When the first new id of the current measurement arrived.
    first_new: Option<Instant>,
    /// When the latest new id arrived.
    last_new: Option<Instant>,
}

/// The sink's shared state: what arrived, and the gate that holds answers back.
#[derive(Debug)]
pub struct SinkState {
    /// Distinct events delivered, with timing.
    received: Mutex<Received>,
    /// Every request, duplicates included.
    requests: AtomicU64,
    /// `true` = answer at once; `false` = hold each request up to [`HOLD_MAX`].
    gate: watch::Sender<bool>,
}

impl SinkState {
    /// Distinct events delivered so far.
    pub fn unique(&self) -> usize {
        self.lock().ids.len()
    }

    /// Requests received so far, duplicates included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// First and latest arrival of a new event since the last [`SinkState::reset_clock`].
    pub fn window(&self) -> (Option<Instant>, Option<Instant>) {
        let received = self.lock();
        (received.first_new, received.last_new)
    }

    /// Starts a new timing window.
    pub fn reset_clock(&self) {
        let mut received = self.lock();
        received.first_new = None;
        received.last_new = None;
    }

    /// Opens (answer at once) or closes (hold answers) the gate.
    pub fn set_open(&self, open: bool) {
        self.gate.send_replace(open);
    }

    /// The received set (a poisoned lock only means a sink task panicked; the set is still valid).
    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one delivered event.
    fn record(&self, id: String) {
        let now = Instant::now();
        let mut received = self.lock();
        if received.ids.insert(id) {
            received.first_new.get_or_insert(now);
            received.last_new = Some(now);
        }
    }
}

/// A local HTTP server standing in for the brand's service: answers 200 to every request.
#[derive(Debug)]
pub struct Sink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it received.
    pub state: Arc<SinkState>,
    /// The accept loop, stopped on drop.
    task: JoinHandle<()>,
}

impl Sink {
    /// Starts the sink on a free loopback port, gate open or closed.
    pub async fn start(open: bool) -> Result<Sink, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("sink cannot listen: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("sink address: {e}"))?;
        let state = Arc::new(SinkState {
            received: Mutex::default(),
            requests: AtomicU64::new(0),
            gate: watch::Sender::new(open),
        });
        let task = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(Sink { addr, state, task })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections and serves each on its own task.
async fn accept_loop(listener: TcpListener, state: Arc<SinkState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request| sink_request(state.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One delivery: read it, wait for the gate, count its id, answer 200.
async fn sink_request(
    state: Arc<SinkState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let id = request
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let _ = request.into_body().collect().await;
    let mut gate = state.gate.subscribe();
    let _ = tokio::time::timeout(HOLD_MAX, gate.wait_for(|open| *open)).await;
    if let Some(id) = id {
        state.record(id);
    }
    Ok(Response::new(Full::new(Bytes::new())))
}
