//! Putting hookline together: the public listener (webhooks, health), the admin listener
//! (inspection, replay, metrics), the dispatcher and the pruning task, with one shutdown path.
//!
//! Library users start here: [`ServerBuilder`] takes a [`Config`] and, optionally, their own
//! [`Handler`]s and routes.

pub(crate) mod admin;
mod assemble;
pub(crate) mod client_ip;
pub(crate) mod http;
mod panics;
pub mod process;
pub(crate) mod requests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::{Config, ConfigError, RouteConfig};
use crate::dispatch::{Dispatcher, HandlerEntry, RetryPolicy, Router as EventRouter};
use crate::handlers::Handler;
use crate::intake::Intake;
use crate::shutdown::{self, Shutdown, ShutdownTrigger};
use crate::sources::Endpoints;
use crate::store::{PostgresStore, SqliteStore, Store, StoreError};

pub use assemble::Plan;
use assemble::{assemble, Mode, Parts};
use client_ip::TrustedProxies;

/// Why hookline could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({setting}): {source}{}", in_use_hint(source))]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The setting it comes from.
        setting: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// What to do when the address is taken: the usual case, another hookline still running.
fn in_use_hint(error: &std::io::Error) -> &'static str {
    if error.kind() == std::io::ErrorKind::AddrInUse {
        "; another process (another hookline?) listens there: stop it, or choose another port"
    } else {
        ""
    }
}

/// Builds a hookline server from a configuration plus handlers and routes given in code.
pub struct ServerBuilder {
    /// File and environment configuration.
    config: Config,
    /// Handlers given in code: name, handler, concurrency.
    handlers: Vec<HandlerEntry>,
    /// Routes given in code, after the configured ones.
    routes: Vec<RouteConfig>,
    /// A store given in code instead of the one the configuration names.
    store: Option<Arc<dyn Store>>,
}

impl ServerBuilder {
    /// Starts from a configuration (for instance [`Config::load`]).
    pub fn new(config: Config) -> Self {
        ServerBuilder {
            config,
            handlers: Vec::new(),
            routes: Vec::new(),
            store: None,
        }
    }

    /// Adds a handler under `name`, running up to `concurrency` deliveries at once.
    pub fn handler(mut self, name: &str, handler: impl Handler, concurrency: usize) -> Self {
        self.handlers
            .push((name.to_owned(), Arc::new(handler), concurrency));
        self
    }

    /// Adds a route (to a configured handler or one added with [`ServerBuilder::handler`]).
    /// When any route is added in code, the implicit "everything to `log`" default route is
    /// not used unless the configuration itself lists it.
    pub fn route(mut self, route: RouteConfig) -> Self {
        self.routes.push(route);
        self
    }

    /// Uses this store instead of the one the configuration names (PostgreSQL at `store.url`,
    /// or SQLite in `data_dir`).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Runs every check [`ServerBuilder::start`] runs, the same code, and keeps nothing open:
    /// the providers and handlers are built (a `file` handler's path is checked instead of
    /// created), the data directory is checked, and both listen addresses are bound and let go.
    /// What `hookline check-config` runs, so that it refuses exactly what `serve` would.
    pub async fn check(self) -> Result<Plan, StartError> {
        let Parts { plan, .. } = assemble(self.config, self.handlers, self.routes, Mode::Check)?;
        if self.store.is_none() {
            match &plan.config.store.url {
                Some(url) => drop(PostgresStore::check(url).await?),
                None => SqliteStore::check(&plan.config.data_dir)?,
            }
        }
        drop(bind(plan.config.listen, PUBLIC)?);
        drop(bind(plan.config.admin.listen, ADMIN)?);
        Ok(plan)
    }

    /// Builds everything, binds both listeners and starts serving.
    pub async fn start(self) -> Result<Server, StartError> {
        let Parts {
            plan,
            providers,
            handlers,
        } = assemble(self.config, self.handlers, self.routes, Mode::Start)?;
        for warning in &plan.warnings {
            tracing::warn!(target: "hookline::startup", "{warning}");
        }
        let config = plan.config.clone();
        let (store, store_shown): (Arc<dyn Store>, String) = match self.store {
            Some(store) => (store, "given in code".into()),
            None => open_store(&config).await?,
        };
        let dispatcher = Arc::new(Dispatcher::new(
            store.clone(),
            crate::sources::all(),
            handlers,
            RetryPolicy::from(&config.delivery),
            config.delivery.timeout,
            config.delivery.shutdown_grace,
        ));
        let intake = Arc::new(build_intake(&config, store.clone(), dispatcher.clone()));
        let public = bind(config.listen, PUBLIC)?;
        let admin = bind(config.admin.listen, ADMIN)?;
        let listeners = Listeners { public, admin };
        let server = Server::spawn(config, providers, store, intake, dispatcher, listeners);
        plan.log_started(server.public_addr, server.admin_addr, &store_shown);
        Ok(server)
    }
}

/// The inbox the configuration names, and how the start-up line shows it: the PostgreSQL
/// database of `store.url`, which replicas share (its password masked), or else SQLite in
/// `data_dir`.
async fn open_store(config: &Config) -> Result<(Arc<dyn Store>, String), StoreError> {
    Ok(match &config.store.url {
        Some(url) => {
            if config.store.max_size > 0 {
                tracing::warn!("store.max_size bounds the SQLite store only; PostgreSQL's disk is its operator's to watch");
            }
            let store = PostgresStore::open(url, config.store.pool_size).await?;
            (Arc::new(store), format!("PostgreSQL at {url}"))
        }
        None => {
            let store = SqliteStore::open(
                &config.data_dir,
                config.store.synchronous,
                config.store.max_size,
            )?;
            let shown = format!(
                "SQLite in {}",
                SqliteStore::db_path(&config.data_dir).display()
            );
            (Arc::new(store), shown)
        }
    })
}
/// Assembles the intake state.
pub(crate) fn build_intake(
    config: &Config,
    store: Arc<dyn Store>,
    dispatcher: Arc<Dispatcher>,
) -> Intake {
    Intake {
        body_limit: config.body_limit,
        body_timeout: config.request_timeout,
        slots: Arc::new(Semaphore::new(config.max_concurrent_requests)),
        store,
        router: EventRouter::new(&config.routes),
        dispatcher,
        unready_until: AtomicI64::new(0),
        stopping: AtomicBool::new(false),
        rejection_log: Default::default(),
    }
}

/// Connections the kernel completes and queues before hookline accepts them (capped by
/// `net.core.somaxconn`, 4096 on current kernels). tokio's own default is 1024: when more
/// senders connect at once, say after a restart or under overload, the handshakes that do not
/// fit are finished only when the kernel retransmits, a second later, and the first request on
/// each of those connections waits that second.
const LISTEN_BACKLOG: u32 = 4096;

/// The settings of the two listen addresses, for [`StartError::Bind`].
const PUBLIC: &str = "HOOKLINE_LISTEN";
/// See [`PUBLIC`].
const ADMIN: &str = "HOOKLINE_ADMIN_LISTEN";

/// Binds a listener on `addr`, which `setting` configures.
fn bind(addr: SocketAddr, setting: &'static str) -> Result<TcpListener, StartError> {
    let listen = || {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        // As `TcpListener::bind` does: a restarted hookline can bind while old connections of
        // its predecessor are in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().map_err(|source| StartError::Bind {
        addr,
        setting,
        source,
    })
}

/// The two bound listeners.
struct Listeners {
    /// Where providers post.
    public: TcpListener,
    /// The admin API.
    admin: TcpListener,
}

/// A running hookline: both listeners, the dispatcher and the background tasks.
pub struct Server {
    /// Where providers post.
    public_addr: SocketAddr,
    /// Where the admin API listens.
    admin_addr: SocketAddr,
    /// Stops everything.
    trigger: ShutdownTrigger,
    /// Intake state, to mark it unready on shutdown.
    intake: Arc<Intake>,
    /// Listener tasks (finish first on shutdown).
    listeners: JoinSet<()>,
    /// Dispatcher and maintenance tasks (finish after the listeners).
    workers: JoinSet<()>,
}

impl Server {
    fn spawn(
        config: Config,
        providers: Vec<Box<dyn Endpoints>>,
        store: Arc<dyn Store>,
        intake: Arc<Intake>,
        dispatcher: Arc<Dispatcher>,
        Listeners { public, admin }: Listeners,
    ) -> Server {
        let (trigger, shutdown) = shutdown::channel();
        let public_addr = public.local_addr().unwrap_or(config.listen);
        let admin_addr = admin.local_addr().unwrap_or(config.admin.listen);
        let grace = config.delivery.shutdown_grace.max(config.request_timeout);
        let mut listeners = JoinSet::new();
        listeners.spawn(http::serve(
            public,
            public_router(&config, providers, intake.clone()),
            config.header_timeout,
            shutdown.clone(),
            grace,
        ));
        let admin_state =
            admin::AdminState::new(&config, store.clone(), dispatcher.clone(), intake.clone());
        listeners.spawn(http::serve(
            admin,
            admin::router(admin_state),
            config.header_timeout,
            shutdown.clone(),
            grace,
        ));
        let mut workers = JoinSet::new();
        workers.spawn(dispatcher.run(shutdown.clone()));
        if let Some(handle) = crate::metrics::install() {
            workers.spawn(crate::metrics::upkeep(handle, shutdown.clone()));
        }
        workers.spawn(prune_loop(store, config.clone(), shutdown));
        Server {
            public_addr,
            admin_addr,
            trigger,
            intake,
            listeners,
            workers,
        }
    }

    /// The bound public address (useful with port 0).
    pub fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Begins a graceful shutdown: stop accepting, finish in-flight requests, let running
    /// deliveries finish within the grace period.
    pub fn shutdown(&self) {
        self.intake.stopping.store(true, Ordering::Relaxed);
        self.trigger.trigger();
    }

    /// Stops like [`Server::shutdown`], after answering for `drain` while `/readyz` already
    /// says 503: a load balancer that checks `/readyz` takes this replica out while it still
    /// answers, and sends nothing more to a port about to close. Then waits until it stopped.
    pub async fn drain_and_stop(self, drain: std::time::Duration) {
        if !drain.is_zero() {
            self.intake.stopping.store(true, Ordering::Relaxed);
            tracing::info!(
                drain_ms = drain.as_millis() as u64,
                "shutting down: /readyz says 503; still answering while the load balancer takes this replica out"
            );
            tokio::time::sleep(drain).await;
        }
        tracing::info!("shutting down: no new requests; finishing in-flight work");
        self.shutdown();
        self.wait().await;
    }

    /// Waits until the server has stopped (after [`Server::shutdown`]).
    pub async fn wait(mut self) {
        while self.listeners.join_next().await.is_some() {}
        while self.workers.join_next().await.is_some() {}
        tracing::info!("hookline stopped");
    }
}

/// The public routes, under the base path: every provider's, and health.
pub(crate) fn public_router(
    config: &Config,
    providers: Vec<Box<dyn Endpoints>>,
    intake: Arc<Intake>,
) -> Router {
    let trusted = Arc::new(TrustedProxies::new(config.trusted_proxies.clone()));
    let health = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(intake.clone());
    let routes = providers
        .into_iter()
        .fold(health, |routes, provider| {
            routes.merge(provider.routes(intake.clone()))
        })
        .fallback(not_found);
    let routes = if config.base_path.is_empty() {
        routes
    } else {
        Router::new()
            .nest(&config.base_path, routes)
            .fallback(not_found)
    };
    let secret_paths = config.sources.secret_paths().into();
    with_request_layers(routes, trusted, secret_paths)
}

/// Request ids, client address resolution, and one access-log line per request (paths that
/// carry a secret masked); inside them, a panic becomes a logged 500 (see [`panics`]).
pub(crate) fn with_request_layers(
    router: Router,
    trusted: Arc<TrustedProxies>,
    secret_paths: Arc<[&'static str]>,
) -> Router {
    router
        .layer(panics::layer())
        .layer(requests::RequestLayer::new(trusted, secret_paths))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(intake): State<Arc<Intake>>) -> Response {
    if intake.is_ready() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable" })),
        )
            .into_response()
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found" }))).into_response()
}

/// Deletes what is past the dedupe window and retention, every `prune_interval`.
async fn prune_loop(store: Arc<dyn Store>, config: Config, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(config.store.prune_interval) => {}
        }
        let started = Instant::now();
        match store
            .prune(config.store.dedupe_window, config.store.retention)
            .await
        {
            Ok(stats) if stats.events_deleted + stats.bodies_dropped > 0 => tracing::info!(
                events_deleted = stats.events_deleted,
                bodies_dropped = stats.bodies_dropped,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "pruned the store"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning failed; will try again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raises this process's open-file limit to at least `want` (or the hard limit).
    fn allow_open_files(want: u64) {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid rlimit for the kernel to fill in and read.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
            if limit.rlim_cur < want {
                limit.rlim_cur = want.min(limit.rlim_max);
                assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
            }
        }
    }

    /// With tokio's default backlog (1024) the kernel drops the handshakes past it until hookline
    /// accepts, and those senders wait for a retransmit; with hookline's they are queued.
    #[tokio::test]
    async fn connections_beyond_tokios_default_backlog_are_queued_not_dropped() {
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(LISTEN_BACKLOG);
        // The kernel caps every backlog at somaxconn (4096 since Linux 5.4, 128 before); 1200 is
        // past tokio's 1024 wherever the kernel allows it.
        let queued = somaxconn.min(LISTEN_BACKLOG).min(1200);
        allow_open_files(queued as u64 + 100);
        let listener = bind("127.0.0.1:0".parse().unwrap(), PUBLIC).unwrap();
        let addr = listener.local_addr().unwrap();
        // Nobody accepts: every connection must complete in the kernel's queue.
        let clients: Vec<std::net::TcpStream> = (0..queued)
            .map(|n| {
                std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500))
                    .unwrap_or_else(|e| panic!("connection {n} not queued: {e}"))
            })
            .collect();
        assert_eq!(clients.len(), queued as usize);
        if queued <= 1024 {
            eprintln!("net.core.somaxconn is {somaxconn}: only {queued} connections checked");
        }
    }
}
