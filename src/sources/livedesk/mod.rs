//! liveDesk: EngageLab's helpdesk built on Chatwoot. Authenticated by a secret token in the URL,
//! and by the Chatwoot signature when a signing secret is configured.
//!
//! A request goes: `receive` checks what needs no body (liveDesk on, client allowed, URL
//! token), then `Intake::receive` admits it, reads the body and calls back
//! `Livedesk::authenticate` (signature, decoding), and commits the event.

mod config;
pub mod event;
pub mod verify;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use chrono::Utc;

use crate::envelope::{body_hash_id, Envelope, Source, SourceSpec};
use crate::intake::{Admission, ClientIp, Intake, Rejection};
use crate::signature::VerifyError;
use crate::sources::{Endpoints, WebhookUrl};

pub use config::LivedeskConfig;
pub use event::Event;
use verify::{ChatwootVerifier, UrlToken};

/// liveDesk has one webhook URL per API channel: one endpoint.
pub const ENDPOINT: &str = "default";

/// Header Chatwoot sets to a UUID per delivery; the provider id when present.
pub const DELIVERY_HEADER: &str = "x-chatwoot-delivery";

/// liveDesk's events, as stored and routed: `livedesk`, ids `evt_ld_…`.
pub const SOURCE: Source = Source::new(&SPEC);

/// What [`SOURCE`] refers to.
static SPEC: SourceSpec = SourceSpec {
    name: "livedesk",
    id_code: "ld",
    decode: crate::sources::decode::<Event>,
    personal_keys: event::PERSONAL_KEYS,
};

/// liveDesk configured: its URL token, the Chatwoot signature check when a secret is set, and
/// how its requests are admitted. Without a token liveDesk is off.
#[derive(Debug)]
pub(crate) struct Livedesk {
    /// The `<token>` of `/webhooks/livedesk/<token>`; `None` = off.
    token: Option<UrlToken>,
    /// Checks `X-Chatwoot-Signature` when set.
    chatwoot: Option<ChatwootVerifier>,
    /// Allow-list and overload policy: liveDesk never retries, so a request may wait for a slot.
    admission: Admission,
    /// How long a request may wait for a slot, for `describe`.
    overload_wait: std::time::Duration,
}

/// What liveDesk's route shares.
struct Served {
    /// The configured provider.
    livedesk: Livedesk,
    /// Where authenticated events go.
    intake: Arc<Intake>,
}

impl Endpoints for Livedesk {
    fn off(&self) -> Option<String> {
        self.token.is_none().then(|| {
            "no token configured (HOOKLINE_LIVEDESK_TOKEN); /webhooks/livedesk/* answers 404"
                .to_owned()
        })
    }

    fn describe(&self) -> Vec<String> {
        let line = match &self.token {
            Some(_) => format!(
                "livedesk          on at /webhooks/livedesk/*** (chatwoot signature: {}; waits up to {} for a request slot when all are busy)",
                if self.chatwoot.is_some() {
                    "required"
                } else {
                    "not configured"
                },
                humantime::format_duration(self.overload_wait)
            ),
            None => "livedesk          off (no token)".into(),
        };
        vec![line]
    }

    fn webhook_urls(&self) -> Vec<WebhookUrl> {
        self.token
            .iter()
            .map(|token| WebhookUrl {
                paste_into: "liveDesk".into(),
                path: format!("/webhooks/livedesk/<token: {}>", token.masked()),
            })
            .collect()
    }

    fn routes(self: Box<Self>, intake: Arc<Intake>) -> axum::Router {
        let served = Arc::new(Served {
            livedesk: *self,
            intake,
        });
        axum::Router::new()
            .route("/webhooks/livedesk/{token}", post(receive))
            .with_state(served)
    }
}

/// `POST /webhooks/livedesk/<token>`. Takes the request whole rather than through the
/// `HeaderMap` extractor, which would copy every header map.
async fn receive(
    State(served): State<Arc<Served>>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let livedesk = &served.livedesk;
    let checked = livedesk
        .check(&token, ClientIp::of(&parts))
        .map(|()| move |body: Bytes| livedesk.authenticate(&parts.headers, body));
    served
        .intake
        .receive(&livedesk.admission, ENDPOINT, body, checked)
        .await
}

impl Livedesk {
    /// What needs no body: liveDesk is on, the client may send, and the URL token is right.
    fn check(&self, token: &str, client: Option<std::net::IpAddr>) -> Result<(), Rejection> {
        let expected = self.token.as_ref().ok_or(Rejection::NotFound)?;
        self.admission.check_client(client)?;
        if !expected.matches(token) {
            return Err(VerifyError::UnknownToken.into());
        }
        Ok(())
    }

    /// Checks the Chatwoot signature if one is configured, then decodes the body.
    fn authenticate(&self, headers: &HeaderMap, body: Bytes) -> Result<Envelope, Rejection> {
        if let Some(chatwoot) = &self.chatwoot {
            chatwoot.verify(headers, &body, Utc::now().timestamp())?;
        }
        let provider_id = headers
            .get(DELIVERY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map_or_else(|| body_hash_id(&body), str::to_owned);
        let decoded = SOURCE.decode(&body);
        Ok(Envelope::new(
            SOURCE,
            ENDPOINT,
            provider_id,
            Utc::now(),
            body,
            decoded,
        ))
    }
}
