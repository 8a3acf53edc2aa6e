//! ChatBrick: LINE-based retail CRM whose webhooks Svix delivers, signed Standard-Webhooks style
//! (see [`crate::signature`]).
//!
//! A request goes: `receive` checks what needs no body (endpoint known, client allowed), then
//! `Intake::receive` admits it, reads the body and calls back `Chatbrick::authenticate`
//! (signature, decoding), and commits the event.

mod config;
pub mod event;
mod verify;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::post;
use chrono::Utc;

use crate::envelope::{Envelope, Source, SourceSpec};
use crate::intake::{Admission, ClientIp, Intake, Rejection};
use crate::sources::{Endpoints, WebhookUrl};

pub use config::{ChatbrickConfig, ChatbrickEndpoint};
pub use event::Event;
use verify::Verifiers;

/// Endpoint name of `/webhooks/chatbrick` itself.
pub const DEFAULT_ENDPOINT: &str = "default";

/// ChatBrick's events, as stored and routed: `chatbrick`, ids `evt_cb_…`.
pub const SOURCE: Source = Source::new(&SPEC);

/// What [`SOURCE`] refers to.
static SPEC: SourceSpec = SourceSpec {
    name: "chatbrick",
    id_code: "cb",
    decode: crate::sources::decode::<Event>,
    personal_keys: event::PERSONAL_KEYS,
};

/// ChatBrick configured: the verifiers of its endpoints and how its requests are admitted.
#[derive(Debug)]
pub(crate) struct Chatbrick {
    /// One verifier per endpoint that has secrets; none means ChatBrick is off.
    verifiers: Verifiers,
    /// Allow-list and overload policy (ChatBrick retries, so it never waits for a slot).
    admission: Admission,
}

/// What ChatBrick's routes share.
struct Served {
    /// The configured provider.
    chatbrick: Chatbrick,
    /// Where authenticated events go.
    intake: Arc<Intake>,
}

impl Endpoints for Chatbrick {
    fn off(&self) -> Option<String> {
        self.verifiers.is_empty().then(|| {
            "no secret configured (HOOKLINE_CHATBRICK_SECRET); /webhooks/chatbrick answers 404"
                .to_owned()
        })
    }

    fn describe(&self) -> Vec<String> {
        self.verifiers.describe()
    }

    fn webhook_urls(&self) -> Vec<WebhookUrl> {
        self.verifiers
            .endpoints()
            .map(|endpoint| match endpoint {
                DEFAULT_ENDPOINT => WebhookUrl {
                    paste_into: "ChatBrick".into(),
                    path: "/webhooks/chatbrick".into(),
                },
                name => WebhookUrl {
                    paste_into: format!("ChatBrick endpoint {name:?}"),
                    path: format!("/webhooks/chatbrick/{name}"),
                },
            })
            .collect()
    }

    fn routes(self: Box<Self>, intake: Arc<Intake>) -> axum::Router {
        let served = Arc::new(Served {
            chatbrick: *self,
            intake,
        });
        axum::Router::new()
            .route("/webhooks/chatbrick", post(receive_default))
            .route("/webhooks/chatbrick/{endpoint}", post(receive_named))
            .with_state(served)
    }
}

/// `POST /webhooks/chatbrick`.
async fn receive_default(State(served): State<Arc<Served>>, request: Request) -> Response {
    receive(&served, DEFAULT_ENDPOINT, request).await
}

/// `POST /webhooks/chatbrick/<endpoint>`.
async fn receive_named(
    State(served): State<Arc<Served>>,
    Path(endpoint): Path<String>,
    request: Request,
) -> Response {
    receive(&served, &endpoint, request).await
}

/// Takes the request whole rather than through the `HeaderMap` extractor, which would copy
/// every header map.
async fn receive(served: &Served, endpoint: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let chatbrick = &served.chatbrick;
    // Unknown endpoints are not counted by name: anyone can make up names.
    let label = if chatbrick.verifiers.contains(endpoint) {
        endpoint
    } else {
        "unknown"
    };
    let checked = chatbrick
        .check(endpoint, ClientIp::of(&parts))
        .map(|verifier| {
            move |body: Bytes| chatbrick.authenticate(verifier, endpoint, &parts.headers, body)
        });
    served
        .intake
        .receive(&chatbrick.admission, label, body, checked)
        .await
}

impl Chatbrick {
    /// What needs no body: the endpoint exists and the client may send to it.
    fn check(
        &self,
        endpoint: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<&crate::signature::Verifier, Rejection> {
        let verifier = self.verifiers.get(endpoint).ok_or(Rejection::NotFound)?;
        self.admission.check_client(client)?;
        Ok(verifier)
    }

    /// Checks the Standard Webhooks signature over the body's raw bytes, then decodes it.
    fn authenticate(
        &self,
        verifier: &crate::signature::Verifier,
        endpoint: &str,
        headers: &axum::http::HeaderMap,
        body: Bytes,
    ) -> Result<Envelope, Rejection> {
        let verified = verifier.verify(headers, &body, Utc::now().timestamp())?;
        let decoded = SOURCE.decode(&body);
        Ok(Envelope::new(
            SOURCE,
            endpoint,
            verified.id,
            Utc::now(),
            body,
            decoded,
        ))
    }
}
