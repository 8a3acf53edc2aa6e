//! The admin listener: list and show events, list dead letters, replay, and `/metrics`.
//!
//! It is separate from the public listener so that it can stay on loopback or an internal
//! network. Every route but `/healthz` requires `Authorization: Bearer <admin token>` when a
//! token is configured; without one, hookline refuses to bind it to a non-loopback address.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
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
use crate::dispatch::{Dispatcher, Router as EventRouter};
use crate::envelope::Sources;
use crate::intake::Intake;
use crate::store::{EventFilter, Store, StoreError};

/// What the admin routes need.
#[derive(Clone)]
pub struct AdminState {
    /// The inbox.
    store: Arc<dyn Store>,
    /// Routes, to create missing deliveries when an event is replayed.
    router: Arc<EventRouter>,
    /// The sources this build serves, to rebuild a stored event for routing.
    sources: Sources,
    /// Woken after a replay so that the deliveries run at once.
    dispatcher: Arc<Dispatcher>,
    /// Bearer token; `None` on loopback-only setups.
    token: Option<Arc<str>>,
    /// Renders `/metrics`.
    metrics: Option<PrometheusHandle>,
    /// Intake, whose readiness `/metrics` reports.
    intake: Arc<Intake>,
    /// `store.max_size`, reported beside the store's size.
    max_size: u64,
}

impl AdminState {
    /// Builds the state from the configuration; installs the metrics recorder.
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        dispatcher: Arc<Dispatcher>,
        intake: Arc<Intake>,
    ) -> Self {
        AdminState {
            store,
            router: Arc::new(EventRouter::new(&config.routes)),
            sources: crate::sources::all(),
            dispatcher,
            token: config.admin.token.as_deref().map(Arc::from),
            metrics: crate::metrics::install(),
            intake,
            max_size: config.store.max_size,
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

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/events", get(list_events))
        .route("/api/events/{id}", get(show_event))
        .route("/api/events/{id}/replay", post(replay_event))
        .route("/api/dead-letters", get(list_dead))
        .route("/api/dead-letters/replay", post(replay_dead))
        .route("/api/deliveries/{id}/replay", post(replay_delivery))
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
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found" }))) });
    super::with_request_layers(routes, Arc::new(TrustedProxies::default()), Arc::new([]))
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
    let detail = state
        .store
        .event(&id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("event {id}")))?;
    let body = detail.body.clone().unwrap_or_default();
    let source = state.sources.get(&detail.summary.source).ok_or_else(|| {
        StoreError::Conflict(format!(
            "event {id} is of source {:?}, which this build does not serve",
            detail.summary.source
        ))
    })?;
    let envelope = crate::envelope::Envelope::decode(
        source,
        &detail.summary.endpoint,
        detail.summary.provider_id.clone(),
        detail.summary.received_at,
        bytes::Bytes::from(body),
    );
    let routes = state.router.deliveries(&envelope);
    let replayed = state.store.replay_event(&id, routes).await?;
    state.dispatcher.wake_all();
    tracing::info!(event_id = %id, deliveries = replayed, "event replayed");
    Ok(Json(json!({ "replayed": replayed })).into_response())
}

async fn replay_delivery(
    State(state): State<AdminState>,
    Path(id): Path<i64>,
) -> Result<Response, AdminError> {
    state.store.replay_delivery(id).await?;
    state.dispatcher.wake_all();
    tracing::info!(delivery = id, "delivery replayed");
    Ok(Json(json!({ "replayed": 1 })).into_response())
}

async fn replay_dead(
    State(state): State<AdminState>,
    Query(filter): Query<EventFilter>,
) -> Result<Response, AdminError> {
    let replayed = state.store.replay_dead(state.checked(filter)?).await?;
    state.dispatcher.wake_all();
    tracing::info!(deliveries = replayed, "dead letters replayed");
    Ok(Json(json!({ "replayed": replayed })).into_response())
}
