//! What every provider's endpoint shares, and nothing provider-specific: admitting a request
//! (allow-list, a request slot), reading the body within limits, committing the event to the
//! inbox before answering, handing its deliveries to dispatch, and the one place where errors
//! become HTTP responses.
//!
//! A provider (under `sources/`) runs its checks that need no body, then calls
//! [`Intake::receive`] with a closure that authenticates and decodes the body into an
//! [`Envelope`]; intake does the rest.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::dispatch::{Delivery, Dispatcher, Reservation, Router};
use crate::envelope::{Envelope, Source};
use crate::metrics;
use crate::rejection_log::RejectionLog;
use crate::signature::VerifyError;
use crate::store::{DeliveryStart, InsertOutcome, NewDelivery, Store};

/// Seconds a client is asked to wait before retrying after a 503.
const RETRY_AFTER_SECS: u64 = 5;

/// The client address of a request, after trusted-proxy resolution: set in the request's
/// extensions by the server's request layer, read by providers for their allow-lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The client address recorded in a request's extensions, if any.
    pub fn of(parts: &axum::http::request::Parts) -> Option<IpAddr> {
        parts.extensions.get::<ClientIp>().map(|client| client.0)
    }
}

/// How intake admits one provider's requests, as the provider's configuration says.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The source of the requests, for metrics and logs.
    source: Source,
    /// Client networks allowed to send (any when empty).
    allowed: Vec<ipnet::IpNet>,
    /// How long a request may wait for a slot when all are busy before its 503: zero for a
    /// sender that retries (refused at once), up to a few seconds for one that does not.
    overload_wait: Duration,
}

impl Admission {
    /// Admission for `source`'s requests.
    pub fn new(source: Source, allowed: Vec<ipnet::IpNet>, overload_wait: Duration) -> Self {
        Admission {
            source,
            allowed,
            overload_wait,
        }
    }

    /// Refuses clients outside the allow-list (when there is one).
    pub fn check_client(&self, client: Option<IpAddr>) -> Result<(), Rejection> {
        let allowed = self.allowed.is_empty()
            || client.is_some_and(|ip| self.allowed.iter().any(|net| net.contains(&ip)));
        if allowed {
            Ok(())
        } else {
            Err(Rejection::Forbidden)
        }
    }
}

/// Shared state of the public listener's webhook requests: limits, and where accepted events
/// go. Held in an `Arc`; every request borrows it.
pub struct Intake {
    /// Largest body accepted.
    pub body_limit: usize,
    /// Time allowed to receive the body.
    pub body_timeout: Duration,
    /// Requests handled at once; beyond it, 503 with `Retry-After` instead of an unbounded
    /// queue (a source may let its requests first wait for a slot, see [`Admission`]).
    pub slots: Arc<Semaphore>,
    /// The inbox.
    pub store: Arc<dyn Store>,
    /// Which handlers each event goes to.
    pub router: Router,
    /// Woken for each committed delivery.
    pub dispatcher: Arc<Dispatcher>,
    /// Unix ms until which `/readyz` says 503 because a commit failed; 0 when healthy. It
    /// expires by itself so that a load balancer sends traffic again and intake can find out
    /// whether the store recovered.
    pub unready_until: AtomicI64,
    /// Set when shutdown begins: `/readyz` says 503 from then on.
    pub stopping: AtomicBool,
    /// Keeps rejection lines to one per reason per second.
    pub(crate) rejection_log: RejectionLog,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("body_limit", &self.body_limit)
            .field("body_timeout", &self.body_timeout)
            .finish_non_exhaustive()
    }
}

/// Every way intake can refuse a request, each with its HTTP status and short reason.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The source is off, or the endpoint is unknown.
    #[error("no such webhook endpoint")]
    NotFound,
    /// The client address is not on the source's allow-list.
    #[error("client address not allowed")]
    Forbidden,
    /// Authentication failed.
    #[error("authentication failed: {0}")]
    Unauthorized(#[from] VerifyError),
    /// The body is above the limit.
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    /// The body did not arrive in time.
    #[error("body not received within {0:?}")]
    Timeout(Duration),
    /// The connection failed while the body was read.
    #[error("could not read the body: {0}")]
    BadBody(String),
    /// Too many requests at once.
    #[error("too many concurrent requests")]
    Overloaded,
    /// The inbox could not commit: the sender must retry.
    #[error("store unavailable")]
    Unavailable,
}

impl Rejection {
    /// Status code and machine-readable reason.
    fn status_and_reason(&self) -> (StatusCode, &'static str) {
        match self {
            Rejection::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Rejection::Forbidden => (StatusCode::FORBIDDEN, "ip_not_allowed"),
            Rejection::Unauthorized(e) => (StatusCode::UNAUTHORIZED, e.reason()),
            Rejection::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Rejection::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            Rejection::BadBody(_) => (StatusCode::BAD_REQUEST, "bad_body"),
            Rejection::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Rejection::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        }
    }

    /// The reason, as used in metrics.
    pub fn reason(&self) -> &'static str {
        self.status_and_reason().1
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, reason) = self.status_and_reason();
        let mut response = (status, axum::Json(json!({ "error": reason }))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

impl Intake {
    /// Runs one webhook request. `authenticate` is the outcome of the provider's checks that
    /// need no body (source configured, endpoint known, client allowed, URL token): a request
    /// that fails them is refused before it takes or waits for a slot. Otherwise it takes a
    /// slot (held until the commit is done, so the limit bounds everything a request holds),
    /// reads the body, hands it to `authenticate` (signature and decoding), commits and answers.
    /// Rejections are counted, logged without secrets (at most one line per reason per second),
    /// and mapped to their status.
    pub async fn receive<A>(
        &self,
        admission: &Admission,
        endpoint_label: &str,
        body: Body,
        authenticate: Result<A, Rejection>,
    ) -> Response
    where
        A: FnOnce(Bytes) -> Result<Envelope, Rejection>,
    {
        let result = async {
            let authenticate = authenticate?;
            let _slot = self.admit(admission).await?;
            let body = self.read_body(body).await?;
            let envelope = authenticate(body)?;
            self.accept(envelope).await
        }
        .await;
        result.unwrap_or_else(|rejection| self.refuse(admission.source, endpoint_label, rejection))
    }

    /// Counts, logs (at most one line per reason per second) and answers a rejection.
    fn refuse(&self, source: Source, endpoint_label: &str, rejection: Rejection) -> Response {
        let reason = rejection.reason();
        metrics::request(source, endpoint_label, reason);
        if let Some(left_out) = self.rejection_log.admit(reason, Instant::now()) {
            tracing::warn!(
                source = source.as_str(),
                endpoint = endpoint_label,
                reason,
                left_out,
                "webhook rejected: {rejection}"
            );
        }
        rejection.into_response()
    }

    /// Whether `/readyz` should say ready: not stopping, no commit failed in the last few
    /// seconds, and the store not known to be unreachable.
    pub fn is_ready(&self) -> bool {
        !self.stopping.load(Ordering::Relaxed)
            && self.unready_until.load(Ordering::Relaxed) <= chrono::Utc::now().timestamp_millis()
            && self.store.is_available()
    }

    /// Takes a request slot, or refuses with 503 when all are busy: at once for a source that
    /// retries, after waiting up to its `overload_wait` for a source that does not. Waiting
    /// requests get freed slots in turn, before any request that arrives later.
    async fn admit(&self, admission: &Admission) -> Result<OwnedSemaphorePermit, Rejection> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        if admission.overload_wait.is_zero() {
            return Err(Rejection::Overloaded);
        }
        match tokio::time::timeout(admission.overload_wait, self.slots.clone().acquire_owned())
            .await
        {
            Ok(Ok(slot)) => Ok(slot),
            _ => Err(Rejection::Overloaded),
        }
    }

    /// Reads the whole body, refusing it past the size limit or the time limit.
    async fn read_body(&self, body: Body) -> Result<Bytes, Rejection> {
        let limited = Limited::new(body, self.body_limit);
        match tokio::time::timeout(self.body_timeout, limited.collect()).await {
            Err(_) => Err(Rejection::Timeout(self.body_timeout)),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.is::<LengthLimitError>() => Err(Rejection::TooLarge(self.body_limit)),
            Ok(Err(e)) => Err(Rejection::BadBody(e.to_string())),
        }
    }

    /// Commits an authenticated event with its deliveries, then answers 200; or 503 when the
    /// store cannot commit, so that the sender retries.
    async fn accept(&self, envelope: Envelope) -> Result<Response, Rejection> {
        // Every line of this request from here on, the access-log line included, names what it
        // carried.
        let span = tracing::Span::current();
        span.record("source", envelope.source.as_str());
        span.record("event_id", envelope.id.as_str());
        let mut deliveries = self.router.deliveries(&envelope);
        let mut reservations = Vec::with_capacity(deliveries.len());
        for delivery in &mut deliveries {
            reservations.push(self.prepare(delivery, &envelope).await);
        }
        let started = Instant::now();
        let outcome = self.store.insert(&envelope, deliveries.clone()).await;
        metrics::commit_latency(started.elapsed());
        match outcome {
            Ok(outcome) => {
                self.unready_until.store(0, Ordering::Relaxed);
                let response = self.acknowledged(&envelope, &outcome);
                if let InsertOutcome::Stored { delivery_ids } = outcome {
                    self.dispatch(envelope, deliveries, delivery_ids, reservations);
                }
                Ok(response)
            }
            Err(e) => {
                let retry_at =
                    chrono::Utc::now().timestamp_millis() + RETRY_AFTER_SECS as i64 * 1000;
                self.unready_until.store(retry_at, Ordering::Relaxed);
                tracing::error!(source = envelope.source.as_str(), event_id = %envelope.id, error = %e,
                    "cannot commit event; answering 503 so that the sender retries");
                Err(Rejection::Unavailable)
            }
        }
    }

    /// Decides the state a delivery is committed in. A handler that runs at intake runs now,
    /// and its delivery is committed as done. Otherwise, where the handler has a free slot, the
    /// delivery is committed already claimed and handed over with the decoded envelope (no
    /// claim round trip, no second decode), and the slot's reservation is returned. A delivery
    /// of an ordered route is always committed pending: only a claim knows whether an earlier
    /// one of its key is still open (docs/ordering.md).
    async fn prepare(
        &self,
        delivery: &mut NewDelivery,
        envelope: &Envelope,
    ) -> Option<Reservation> {
        if delivery.order.is_some() {
            return None;
        }
        if let Some(success) = self
            .dispatcher
            .run_at_intake(&delivery.handler, envelope)
            .await
        {
            delivery.start = DeliveryStart::Delivered(success);
            return None;
        }
        let reservation = self.dispatcher.reserve(&delivery.handler)?;
        delivery.start = DeliveryStart::Claimed(self.dispatcher.lease());
        Some(reservation)
    }

    /// Hands committed deliveries over to dispatch: directly where a slot was reserved,
    /// otherwise by waking the handler's worker; those done at intake are only counted.
    fn dispatch(
        &self,
        envelope: Envelope,
        deliveries: Vec<NewDelivery>,
        delivery_ids: Vec<i64>,
        reservations: Vec<Option<Reservation>>,
    ) {
        let envelope = Arc::new(envelope);
        let since = envelope.received_at;
        for ((delivery, delivery_id), reservation) in
            deliveries.into_iter().zip(delivery_ids).zip(reservations)
        {
            match (reservation, delivery.start) {
                (_, DeliveryStart::Delivered(success)) => {
                    metrics::attempt(&delivery.handler, "delivered", success.duration)
                }
                (Some(reservation), _) => self.dispatcher.hand_over(
                    reservation,
                    Delivery {
                        delivery_id,
                        attempt: 1,
                        since,
                        ordered: false,
                        envelope: envelope.clone(),
                    },
                ),
                (None, _) => self.dispatcher.wake(&delivery.handler),
            }
        }
    }

    fn acknowledged(&self, envelope: &Envelope, outcome: &InsertOutcome) -> Response {
        let status = match outcome {
            InsertOutcome::Stored { .. } => {
                metrics::event(envelope.source, &envelope.event_type);
                "accepted"
            }
            InsertOutcome::Duplicate => "duplicate",
        };
        metrics::request(envelope.source, &envelope.endpoint, status);
        tracing::debug!(source = envelope.source.as_str(), event_type = %envelope.event_type,
            event_id = %envelope.id, provider_id = %envelope.provider_id,
            undecodable = envelope.decode_error.as_deref(), status, "webhook received");
        if let Some(error) = envelope.decode_error.as_deref() {
            tracing::warn!(source = envelope.source.as_str(), event_id = %envelope.id, error,
                "authentic body does not fit the event types; stored raw and flagged");
        }
        axum::Json(Acknowledgement {
            status,
            id: &envelope.id,
        })
        .into_response()
    }
}

/// The body of a 200: `{"status": "accepted" | "duplicate", "id": "evt_…"}`.
#[derive(serde::Serialize)]
struct Acknowledgement<'a> {
    status: &'static str,
    id: &'a str,
}
