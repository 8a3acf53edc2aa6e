//! ChatBrick: LINE-based retail CRM whose webhooks Svix delivers, signed Standard-Webhooks style
//! (see [`crate::signature`]).

pub mod event;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;

use crate::envelope::{Envelope, Source};
use crate::intake::{Intake, Rejection};
use crate::server::ClientIp;
use crate::signature::Verifier;

pub use event::Event;

/// Endpoint name of `/webhooks/chatbrick` itself.
pub const DEFAULT_ENDPOINT: &str = "default";

/// `POST /webhooks/chatbrick`.
pub async fn receive_default(State(intake): State<Arc<Intake>>, request: Request) -> Response {
    receive(&intake, DEFAULT_ENDPOINT, request).await
}

/// `POST /webhooks/chatbrick/<endpoint>`.
pub async fn receive_named(
    State(intake): State<Arc<Intake>>,
    Path(endpoint): Path<String>,
    request: Request,
) -> Response {
    receive(&intake, &endpoint, request).await
}

/// Takes the request whole rather than through the `HeaderMap` extractor, which would copy
/// every header map.
async fn receive(intake: &Intake, endpoint: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let client = ClientIp::of(&parts);
    // Unknown endpoints are not counted by name: anyone can make up names.
    let label = if intake.chatbrick.contains_key(endpoint) {
        endpoint
    } else {
        "unknown"
    };
    let authenticate = check(intake, endpoint, client)
        .map(|verifier| authenticate(intake, verifier, endpoint, &parts.headers, body));
    intake.receive(Source::Chatbrick, label, authenticate).await
}

/// What needs no body: the endpoint exists and the client may send to it.
fn check<'a>(
    intake: &'a Intake,
    endpoint: &str,
    client: Option<std::net::IpAddr>,
) -> Result<&'a Verifier, Rejection> {
    let verifier = intake.chatbrick.get(endpoint).ok_or(Rejection::NotFound)?;
    intake.check_client(Source::Chatbrick, client)?;
    Ok(verifier)
}

/// Reads the body and checks the Standard Webhooks signature over its raw bytes.
async fn authenticate(
    intake: &Intake,
    verifier: &Verifier,
    endpoint: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Envelope, Rejection> {
    let body = intake.read_body(body).await?;
    let verified = verifier.verify(headers, &body, Utc::now().timestamp())?;
    Ok(Envelope::new(
        Source::Chatbrick,
        endpoint,
        verified.id,
        Utc::now(),
        body,
    ))
}
