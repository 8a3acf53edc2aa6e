//! What every request on both listeners goes through, in one layer: a request id (the one a
//! proxy sent, or a new one) on the request and its response, the client address after
//! trusted-proxy resolution, a span that the request's log lines carry, and one access-log
//! line with the latency.
//!
//! One hand-written layer instead of a stack of generic ones (request id, propagation, trace,
//! client address): the stack cost about 5 µs per request, a quarter of hookline's request
//! path on one core (docs/performance-log.md, "The request path").

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use rand::Rng;
use tower::{Layer, Service};
use tracing::{Instrument, Span};

use super::client_ip::TrustedProxies;
use super::http::{masked_path, REQUEST_ID_HEADER};
use crate::intake::ClientIp;

/// The request-id header, pre-parsed.
static REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// Adds [`RequestService`] around a router.
#[derive(Debug, Clone)]
pub struct RequestLayer {
    /// Whose `X-Forwarded-For` to believe.
    trusted: Arc<TrustedProxies>,
    /// Path prefixes followed by a secret (the liveDesk token), masked in logs.
    secret_paths: Arc<[&'static str]>,
}

impl RequestLayer {
    /// A layer that resolves client addresses through `trusted` and masks what follows
    /// `secret_paths` in logged paths.
    pub fn new(trusted: Arc<TrustedProxies>, secret_paths: Arc<[&'static str]>) -> Self {
        RequestLayer {
            trusted,
            secret_paths,
        }
    }
}

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestService {
            inner,
            trusted: self.trusted.clone(),
            secret_paths: self.secret_paths.clone(),
        }
    }
}

/// The service [`RequestLayer`] wraps a router in.
#[derive(Debug, Clone)]
pub struct RequestService<S> {
    /// The router.
    inner: S,
    /// Whose `X-Forwarded-For` to believe.
    trusted: Arc<TrustedProxies>,
    /// Path prefixes followed by a secret, masked in logs.
    secret_paths: Arc<[&'static str]>,
}

impl<S> Service<Request> for RequestService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let request_id = request_id(&mut request);
        let client = self.client(&request);
        request.extensions_mut().insert(ClientIp(client));
        let span = request_span(&request, &request_id, client, &self.secret_paths);
        let response = self.inner.call(request);
        Box::pin(
            async move {
                let Ok(mut response) = response.await;
                response
                    .headers_mut()
                    .insert(REQUEST_ID.clone(), request_id);
                log_response(&response, started.elapsed());
                Ok(response)
            }
            .instrument(span),
        )
    }
}

impl<S> RequestService<S> {
    /// The client address: the peer, or what a trusted proxy says it forwarded for.
    fn client(&self, request: &Request) -> std::net::IpAddr {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        self.trusted.client_ip(peer, request.headers())
    }
}

/// The request's id: the one it came with (set by a proxy), else 16 new random hex digits,
/// which are then set on the request too.
fn request_id(request: &mut Request) -> HeaderValue {
    if let Some(id) = request.headers().get(&REQUEST_ID) {
        return id.clone();
    }
    let id = HeaderValue::from_str(&format!("{:016x}", rand::thread_rng().gen::<u64>()))
        .unwrap_or_else(|_| HeaderValue::from_static("-"));
    request.headers_mut().insert(REQUEST_ID.clone(), id.clone());
    id
}

/// The span every request's log lines carry: request id, method, masked path, client, and for
/// webhooks the source and event id (recorded by intake once known). Nothing is formatted
/// when the span is filtered out.
fn request_span(
    request: &Request,
    request_id: &HeaderValue,
    client: std::net::IpAddr,
    secret_paths: &[&str],
) -> Span {
    tracing::info_span!(
        "request",
        request_id = request_id.to_str().unwrap_or("-"),
        method = %request.method(),
        path = %masked_path(request.uri().path(), secret_paths),
        client = %client,
        source = tracing::field::Empty,
        event_id = tracing::field::Empty,
    )
}

/// The access-log line and the latency metric.
fn log_response(response: &Response, latency: Duration) {
    crate::metrics::intake_latency(latency);
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
}
