//! The admin listener: list and show events, list dead letters, replay, and `/metrics`.
//!
//! It is separate from the public listener so that it can stay on loopback or an internal
//! network. Every route but `/healthz` requires `Authorization: Bearer <admin token>` when a
//! token is configured; without one, hookline refuses to bind it to a non-loopback address.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{TimeDelta, Utc};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::client_ip::TrustedProxies;
use crate::config::Config;
use crate::dispatch::{Dispatcher, Replayer, Router as EventRouter};
use crate::envelope::Sources;
use crate::inspector::{Inspector, OverTls};
use crate::intake::Intake;
use crate::store::{EventFilter, Store, StoreError};

/// What the admin routes need.
#[derive(Clone)]
pub struct AdminState {
    /// The inbox.
    store: Arc<dyn Store>,
    /// Replays, with the routes and the dispatcher to wake.
    replayer: Replayer,
    /// The sources this build serves, to check a filter's source.
    sources: Sources,
    /// Bearer token; `None` on loopback-only setups.
    token: Option<Arc<str>>,
    /// Renders `/metrics`.
    metrics: Option<PrometheusHandle>,
    /// Intake, whose readiness `/metrics` reports.
    intake: Arc<Intake>,
    /// `store.max_size`, reported beside the store's size.
    max_size: u64,
    /// The web inspector, at `/` (or its base path).
    inspector: Inspector,
    /// Proxies believed when they say a request came over TLS (the inspector's cookies).
    trusted: Arc<TrustedProxies>,
    /// The names of the ordered routes, whose gauges `/metrics` sets (to 0 when all is well).
    ordered_routes: Arc<[String]>,
}

impl AdminState {
    /// Builds the state from the configuration; installs the metrics recorder.
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        dispatcher: Arc<Dispatcher>,
        intake: Arc<Intake>,
    ) -> Self {
        let sources = crate::sources::all();
        let replayer = Replayer::new(
            store.clone(),
            EventRouter::new(&config.routes),
            sources.clone(),
            dispatcher,
        );
        let metrics = crate::metrics::install();
        let inspector = Inspector::new(
            &config.admin.inspector,
            config.admin.token.as_deref(),
            store.clone(),
            replayer.clone(),
            sources.clone(),
            metrics.clone(),
        );
        AdminState {
            replayer,
            store,
            sources,
            token: config.admin.token.as_deref().map(Arc::from),
            metrics,
            intake,
            max_size: config.store.max_size,
            inspector,
            trusted: Arc::new(TrustedProxies::new(config.trusted_proxies.clone())),
            ordered_routes: config
                .routes
                .iter()
                .filter(|r| r.order_by.is_some())
                .map(|r| r.name().to_owned())
                .collect(),
        }
    }
}

impl AdminState {
    /// The filter, once its source is known to be one this build serves: a misspelt source is
    /// a bad request, not an empty answer.
    fn checked(&self, filter: EventFilter) -> Result<EventFilter, AdminError> {
        match &filter.source {
            Some(name) if self.sources.get(name).is_none() => Err(AdminError::BadRequest(format!(
                "unknown source {name:?} (expected one of {})",
                self.sources.names().join(", ")
            ))),
            _ => Ok(filter),
        }
    }
}

/// The admin routes: the JSON API and `/metrics` (bearer token), the inspector's pages (its
/// own login), `/healthz` (open).
pub fn router(state: AdminState) -> Router {
    let (inspector, trusted) = (state.inspector.clone(), state.trusted.clone());
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/events", get(list_events))
        .route("/api/events/{id}", get(show_event))
        .route("/api/events/{id}/replay", post(replay_event))
        .route("/api/dead-letters", get(list_dead))
        .route("/api/dead-letters/replay", post(replay_dead))
        .route("/api/deliveries/{id}/replay", post(replay_delivery))
        .route("/api/blocked", get(list_blocked))
        .route("/api/blocked/{delivery_id}/skip", post(skip_blocked))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .with_state(state);
    let routes = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .merge(protected)
        .merge(crate::inspector::router(inspector))
        .layer(axum::middleware::from_fn_with_state(trusted, mark_tls))
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found" }))) });
    super::with_request_layers(routes, Arc::new(TrustedProxies::default()), Arc::new([]))
}

/// Tells the inspector whether the request came over TLS (through a trusted proxy).
async fn mark_tls(
    State(trusted): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let tls = peer.is_some_and(|peer| trusted.forwarded_https(peer, request.headers()));
    request.extensions_mut().insert(OverTls(tls));
    next.run(request).await
}

/// Refuses requests without the right bearer token (when one is configured).
async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let Some(expected) = &state.token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        next.run(request).await
    } else {
        let mut response = AdminError::Unauthorized.into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        response
    }
}

/// Admin failures as HTTP.
#[derive(Debug, thiserror::Error)]
enum AdminError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match &self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            AdminError::Store(StoreError::Conflict(_)) => StatusCode::CONFLICT,
            AdminError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

async fn metrics(State(state): State<AdminState>) -> Response {
    scrape_time_gauges(&state).await;
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "metrics recorder not installed" })),
        )
            .into_response(),
    }
}

/// The gauges read at scrape time, so that they are never stale: delivery counts, the age of
/// the oldest waiting delivery, the store's size, readiness. One that cannot be read keeps its
/// last value (and the failure is logged); readiness then says what is wrong.
async fn scrape_time_gauges(state: &AdminState) {
    crate::metrics::ready(state.intake.is_ready());
    match state.store.counts().await {
        Ok(counts) => {
            crate::metrics::deliveries("pending", counts.pending);
            crate::metrics::deliveries("inflight", counts.inflight);
            crate::metrics::deliveries("dead", counts.dead);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read delivery counts for /metrics"),
    }
    match state.store.oldest_waiting().await {
        Ok(oldest) => {
            let age = oldest.map_or(TimeDelta::zero(), |since| Utc::now() - since);
            crate::metrics::oldest_waiting(age.to_std().unwrap_or_default());
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the backlog's age for /metrics"),
    }
    match state.store.size().await {
        Ok(Some(bytes)) => crate::metrics::store_size(bytes, state.max_size),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the store's size for /metrics"),
    }
    if !state.ordered_routes.is_empty() {
        ordered_gauges(state).await;
    }
}

/// The blocked keys and the age of the oldest held-back delivery of each ordered route (0 for
/// a route with neither).
async fn ordered_gauges(state: &AdminState) {
    let found = match state.store.ordered_routes().await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read ordered routes for /metrics");
            return;
        }
    };
    let now = Utc::now();
    for route in state.ordered_routes.iter() {
        let seen = found.iter().find(|r| &r.route == route);
        let held = seen.and_then(|r| r.oldest_held_since);
        let age = held.map_or(TimeDelta::zero(), |since| now - since);
        crate::metrics::ordered_route(
            route,
            seen.map_or(0, |r| r.blocked_keys),
            age.to_std().unwrap_or_default(),
        );
    }
}

async fn list_events(
    State(state): State<AdminState>,
    Query(filter): Query<EventFilter>,
) -> Result<Response, AdminError> {
    let events = state.store.list_events(state.checked(filter)?).await?;
    Ok(Json(json!({ "events": events })).into_response())
}

async fn show_event(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    match state.store.event(&id).await? {
        Some(event) => Ok(Json(event).into_response()),
        None => Err(StoreError::NotFound(format!("event {id}")).into()),
    }
}

async fn list_dead(
    State(state): State<AdminState>,
    Query(filter): Query<EventFilter>,
) -> Result<Response, AdminError> {
    let deliveries = state.store.dead_letters(state.checked(filter)?).await?;
    Ok(Json(json!({ "dead_letters": deliveries })).into_response())
}

async fn replay_event(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let replayed = state.replayer.event(&id).await?;
    Ok(Json(json!({ "replayed": replayed })).into_response())
}

async fn replay_delivery(
    State(state): State<AdminState>,
    Path(id): Path<i64>,
) -> Result<Response, AdminError> {
    state.replayer.delivery(id).await?;
    Ok(Json(json!({ "replayed": 1 })).into_response())
}

async fn list_blocked(State(state): State<AdminState>) -> Result<Response, AdminError> {
    let blocked = state.store.blocked_keys().await?;
    Ok(Json(json!({ "blocked": blocked })).into_response())
}

async fn skip_blocked(
    State(state): State<AdminState>,
    Path(delivery_id): Path<i64>,
) -> Result<Response, AdminError> {
    state.replayer.skip(delivery_id).await?;
    Ok(Json(json!({ "skipped": 1 })).into_response())
}

async fn replay_dead(
    State(state): State<AdminState>,
    Query(filter): Query<EventFilter>,
) -> Result<Response, AdminError> {
    let replayed = state.replayer.dead(state.checked(filter)?).await?;
    Ok(Json(json!({ "replayed": replayed })).into_response())
}
