//! The `forward` handler: POST each event to the brand's own service, signed Standard-Webhooks
//! style so that any Standard Webhooks library verifies it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::value::RawValue;

use super::{Handler, HandlerError};
use crate::envelope::Envelope;
use crate::signature::{Key, KeyError, Signer};
use serde::{Deserialize, Serialize};

/// Body of forwarded requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardFormat {
    /// The provider's original bytes.
    #[default]
    Raw,
    /// A CloudEvents 1.0 structured-mode JSON document.
    Cloudevents,
}

/// A URL without its path, query and credentials (which may carry tokens), for `Debug` output.
pub fn url_origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<invalid url>".into(),
    }
}

// Hand-written `Debug` for everything that holds a secret, so that printing a configuration
// (in a log line, a panic message, a test failure) never shows one.

/// Header naming the source (`chatbrick`/`livedesk`) on forwarded requests.
pub const SOURCE_HEADER: &str = "x-hookline-source";
/// Header naming the wire event type on forwarded requests.
pub const EVENT_TYPE_HEADER: &str = "x-hookline-event-type";
/// Header naming the endpoint that received the event.
pub const ENDPOINT_HEADER: &str = "x-hookline-endpoint";

/// Forwards events over HTTP. Holds one pooled client; cheap to share.
pub struct ForwardHandler {
    /// Target URL.
    url: reqwest::Url,
    /// Signs each request with the route's own secret.
    signer: Signer,
    /// Raw provider body or CloudEvents envelope.
    format: ForwardFormat,
    /// Dead-letter 4xx at once (false) or retry them (true).
    retry_client_errors: bool,
    /// Pooled HTTP client that does not follow redirects.
    client: reqwest::Client,
}

impl std::fmt::Debug for ForwardHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL's path and query may carry a token: show only where it goes.
        f.debug_struct("ForwardHandler")
            .field("url", &url_origin(self.url.as_str()))
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Why a forward handler cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ForwardConfigError {
    /// The URL does not parse or is not http(s).
    #[error("invalid forward url: {0}")]
    Url(String),
    /// The secret is not a usable signing key.
    #[error("invalid forward secret: {0}")]
    Secret(#[from] KeyError),
    /// The HTTP client could not be built.
    #[error("cannot build HTTP client: {0}")]
    Client(String),
}

impl ForwardHandler {
    /// Builds the handler: parses the URL and the `whsec_` secret, sets up the client.
    pub fn new(
        url: &str,
        secret: &str,
        format: ForwardFormat,
        timeout: Duration,
        retry_client_errors: bool,
    ) -> Result<Self, ForwardConfigError> {
        let url = reqwest::Url::parse(url).map_err(|e| ForwardConfigError::Url(e.to_string()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(ForwardConfigError::Url(format!(
                "scheme {} is not http or https",
                url.scheme()
            )));
        }
        let key: Key = secret.parse()?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("hookline/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ForwardConfigError::Client(e.to_string()))?;
        Ok(ForwardHandler {
            url,
            signer: Signer::new(key)?,
            format,
            retry_client_errors,
            client,
        })
    }

    /// The request body and its content type.
    fn body(&self, event: &Envelope) -> (Vec<u8>, &'static str) {
        match self.format {
            ForwardFormat::Raw => (event.body.to_vec(), "application/json"),
            ForwardFormat::Cloudevents => (cloudevent(event), "application/cloudevents+json"),
        }
    }

    /// Maps a response status to the delivery outcome.
    fn classify(&self, response: &reqwest::Response) -> Result<(), HandlerError> {
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let code = status.as_u16();
        let retryable = status.is_server_error()
            || code == 408
            || code == 429
            || (self.retry_client_errors && status.is_client_error());
        Err(HandlerError {
            message: format!("receiver answered {status}"),
            retryable,
            http_status: Some(code),
            retry_after: retry_after(response.headers()),
        })
    }
}

#[async_trait]
impl Handler for ForwardHandler {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let (body, content_type) = self.body(event);
        let timestamp = Utc::now().timestamp();
        let signature = self.signer.sign(&event.id, timestamp, &body);
        let response = self
            .client
            .post(self.url.clone())
            .header("content-type", content_type)
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header(SOURCE_HEADER, event.source.as_str())
            .header(EVENT_TYPE_HEADER, &event.event_type)
            .header(ENDPOINT_HEADER, &event.endpoint)
            .body(body)
            .send()
            .await
            .map_err(|e| HandlerError::retryable(describe_send_error(&e)))?;
        self.classify(&response)
    }
}

/// A short description of a transport error, without the URL (it may carry a token).
fn describe_send_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        detail = inner.to_string();
        source = inner.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

/// A CloudEvents 1.0 structured-mode JSON document around the raw body.
fn cloudevent(event: &Envelope) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct CloudEvent<'a> {
        specversion: &'static str,
        id: &'a str,
        source: String,
        #[serde(rename = "type")]
        event_type: String,
        time: String,
        datacontenttype: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        data_base64: Option<String>,
    }
    let raw: Option<&RawValue> = serde_json::from_slice(&event.body).ok();
    let document = CloudEvent {
        specversion: "1.0",
        id: &event.id,
        source: format!("/hookline/{}/{}", event.source, event.endpoint),
        event_type: format!("{}.{}", event.source, event.event_type),
        time: event.received_at.to_rfc3339(),
        datacontenttype: "application/json",
        data: raw,
        data_base64: raw.is_none().then(|| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(&event.body)
        }),
    };
    serde_json::to_vec(&document).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(body: &'static [u8]) -> Envelope {
        crate::envelope::testing::envelope("chatbrick", "default", "msg_1", Utc::now(), body)
    }

    #[test]
    fn cloudevent_embeds_json_body() {
        let doc: serde_json::Value = serde_json::from_slice(&cloudevent(&envelope(
            br#"{"type":"store.created","data":{}}"#,
        )))
        .unwrap();
        assert_eq!(doc["specversion"], "1.0");
        assert_eq!(doc["type"], "chatbrick.store.created");
        assert_eq!(doc["source"], "/hookline/chatbrick/default");
        assert_eq!(doc["data"]["type"], "store.created");
        assert!(doc.get("data_base64").is_none());
    }

    #[test]
    fn cloudevent_base64_for_non_json() {
        let doc: serde_json::Value =
            serde_json::from_slice(&cloudevent(&envelope(b"not json"))).unwrap();
        assert_eq!(doc["data_base64"], "bm90IGpzb24=");
        assert_eq!(doc["type"], "chatbrick.unknown");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "120".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        let later = (Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        headers.insert("retry-after", later.parse().unwrap());
        let got = retry_after(&headers).unwrap();
        assert!(got > Duration::from_secs(80) && got <= Duration::from_secs(90));
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn rejects_non_http_urls() {
        let err = ForwardHandler::new(
            "ftp://x",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ForwardFormat::Raw,
            Duration::from_secs(1),
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("ftp"));
    }
}
