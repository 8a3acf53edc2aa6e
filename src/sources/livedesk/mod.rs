//! liveDesk: EngageLab's helpdesk built on Chatwoot. Authenticated by a secret token in the URL,
//! and by the Chatwoot signature when a signing secret is configured.

pub mod event;
pub mod verify;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;

use crate::envelope::{body_hash_id, Envelope, Source};
use crate::intake::{Intake, LivedeskAuth, Rejection};
use crate::server::ClientIp;
use crate::signature::VerifyError;

pub use event::Event;

/// liveDesk has one webhook URL per API channel: one endpoint.
pub const ENDPOINT: &str = "default";

/// Header Chatwoot sets to a UUID per delivery; the provider id when present.
pub const DELIVERY_HEADER: &str = "x-chatwoot-delivery";

/// `POST /webhooks/livedesk/<token>`. Takes the request whole rather than through the
/// `HeaderMap` extractor, which would copy every header map.
pub async fn receive(
    State(intake): State<Arc<Intake>>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let client = ClientIp::of(&parts);
    let authenticate = check(&intake, &token, client)
        .map(|auth| authenticate(&intake, auth, &parts.headers, body));
    intake
        .receive(Source::Livedesk, ENDPOINT, authenticate)
        .await
}

/// What needs no body: liveDesk is on, the client may send, and the URL token is right.
fn check<'a>(
    intake: &'a Intake,
    token: &str,
    client: Option<std::net::IpAddr>,
) -> Result<&'a LivedeskAuth, Rejection> {
    let auth = intake.livedesk.as_ref().ok_or(Rejection::NotFound)?;
    intake.check_client(Source::Livedesk, client)?;
    if !auth.token.matches(token) {
        return Err(VerifyError::UnknownToken.into());
    }
    Ok(auth)
}

/// Reads the body, then checks the Chatwoot signature if one is configured.
async fn authenticate(
    intake: &Intake,
    auth: &LivedeskAuth,
    headers: &HeaderMap,
    body: Body,
) -> Result<Envelope, Rejection> {
    let body = intake.read_body(body).await?;
    if let Some(chatwoot) = &auth.chatwoot {
        chatwoot.verify(headers, &body, Utc::now().timestamp())?;
    }
    let provider_id = headers
        .get(DELIVERY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map_or_else(|| body_hash_id(&body), str::to_owned);
    Ok(Envelope::new(
        Source::Livedesk,
        ENDPOINT,
        provider_id,
        Utc::now(),
        body,
    ))
}
