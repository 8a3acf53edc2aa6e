//! Acting like a provider: sends a webhook to any hookline URL exactly as ChatBrick (Svix) or
//! liveDesk (Chatwoot) would, so operators can test a deployment end to end, through their
//! proxy, before real traffic arrives.

use std::path::Path;

use bytes::Bytes;
use chrono::Utc;
use rand::Rng;

use crate::envelope::Source;
use crate::signature::{Key, Signer};
use crate::sources::livedesk::verify::ChatwootVerifier;
use crate::sources::{chatbrick, livedesk};

/// The providers' documented example bodies, built into the binary: (source, event type, body).
pub const EXAMPLES: &[(Source, &str, &str)] = &[
    (
        chatbrick::SOURCE,
        "contact.connection.connected",
        include_str!("../fixtures/chatbrick/contact.connection.connected.store_and_staff.json"),
    ),
    (
        chatbrick::SOURCE,
        "contact.connection.changed",
        include_str!("../fixtures/chatbrick/contact.connection.changed.store_and_staff.json"),
    ),
    (
        chatbrick::SOURCE,
        "contact.connection.disconnected",
        include_str!("../fixtures/chatbrick/contact.connection.disconnected.example.json"),
    ),
    (
        chatbrick::SOURCE,
        "store.created",
        include_str!("../fixtures/chatbrick/store.created.example.json"),
    ),
    (
        chatbrick::SOURCE,
        "store.updated",
        include_str!("../fixtures/chatbrick/store.updated.example.json"),
    ),
    (
        chatbrick::SOURCE,
        "store.deactivated",
        include_str!("../fixtures/chatbrick/store.deactivated.example.json"),
    ),
    (
        chatbrick::SOURCE,
        "account.created",
        include_str!("../fixtures/chatbrick/account.created.example.json"),
    ),
    (
        chatbrick::SOURCE,
        "account.deactivated",
        include_str!("../fixtures/chatbrick/account.deactivated.example.json"),
    ),
    (
        livedesk::SOURCE,
        "conversation_created",
        include_str!("../fixtures/livedesk/conversation_created.api_channel_doc.json"),
    ),
    (
        livedesk::SOURCE,
        "conversation_updated",
        include_str!("../fixtures/livedesk/conversation_updated.composed_from_doc.json"),
    ),
    (
        livedesk::SOURCE,
        "conversation_status_changed",
        include_str!("../fixtures/livedesk/conversation_status_changed.composed_from_doc.json"),
    ),
    (
        livedesk::SOURCE,
        "message_created",
        include_str!("../fixtures/livedesk/message_created.api_channel_doc.json"),
    ),
    (
        livedesk::SOURCE,
        "message_updated",
        include_str!("../fixtures/livedesk/message_updated.composed_from_doc.json"),
    ),
];

/// Why a webhook could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Neither a known event name nor a readable file.
    #[error("{0:?} is neither a documented {1} event ({2}) nor a readable file")]
    UnknownEvent(String, Source, String),
    /// The secret does not parse.
    #[error("invalid secret: {0}")]
    Secret(String),
    /// The request failed (connection refused, timeout, TLS, …), described without the URL's
    /// path, which may carry a token.
    #[error("{0}")]
    Http(String),
    /// No secret to sign with.
    #[error("{0}")]
    NoSecret(String),
}

/// The body for `event`: a built-in example by event type, or the contents of a file.
pub fn example_or_file(source: Source, event: &str) -> Result<Bytes, SendError> {
    if let Some((_, _, body)) = EXAMPLES
        .iter()
        .find(|(s, name, _)| *s == source && *name == event)
    {
        return Ok(Bytes::from_static(body.as_bytes()));
    }
    std::fs::read(Path::new(event))
        .map(Bytes::from)
        .map_err(|_| {
            let names: Vec<&str> = EXAMPLES
                .iter()
                .filter(|(s, _, _)| *s == source)
                .map(|(_, name, _)| *name)
                .collect();
            SendError::UnknownEvent(event.to_owned(), source, names.join(", "))
        })
}

/// A fresh message id in Svix's style.
fn message_id() -> String {
    format!("msg_{:032x}", rand::thread_rng().gen::<u128>())
}

/// The headers ChatBrick's sender (Svix) puts on a request: `svix-id`, `svix-timestamp`,
/// `svix-signature`, signed with `secret`.
pub fn chatbrick_headers(
    secret: &str,
    body: &[u8],
) -> Result<Vec<(&'static str, String)>, SendError> {
    let key: Key = secret
        .parse()
        .map_err(|e| SendError::Secret(format!("{e}")))?;
    let signer = Signer::new(key).map_err(|e| SendError::Secret(format!("{e}")))?;
    let id = message_id();
    let timestamp = Utc::now().timestamp();
    let signature = signer.sign(&id, timestamp, body);
    Ok(vec![
        ("svix-id", id),
        ("svix-timestamp", timestamp.to_string()),
        ("svix-signature", signature),
    ])
}

/// The headers a signing Chatwoot puts on a request: delivery id, timestamp and, with a secret,
/// the signature.
pub fn livedesk_headers(secret: Option<&str>, body: &[u8]) -> Vec<(&'static str, String)> {
    let timestamp = Utc::now().timestamp();
    let mut headers = vec![(
        "x-chatwoot-delivery",
        uuid_like(rand::thread_rng().gen::<u128>()),
    )];
    if let Some(secret) = secret {
        let verifier =
            ChatwootVerifier::new(secret.to_owned(), crate::signature::DEFAULT_TOLERANCE);
        headers.push(("x-chatwoot-timestamp", timestamp.to_string()));
        headers.push(("x-chatwoot-signature", verifier.sign(timestamp, body)));
    }
    headers
}

/// Formats 128 random bits as a version-4 UUID string.
fn uuid_like(bits: u128) -> String {
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Posts `body` with `headers` to `url`; returns the status and the response body.
pub async fn post(
    url: &str,
    body: Bytes,
    headers: Vec<(&'static str, String)>,
) -> Result<(u16, String), SendError> {
    let failed = |e: reqwest::Error| SendError::Http(crate::client_error::describe(&e, url));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(failed)?;
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("hookline-send/", env!("CARGO_PKG_VERSION")),
        )
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(failed)?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_example_is_built_in() {
        assert_eq!(
            EXAMPLES.iter().filter(|e| e.0 == chatbrick::SOURCE).count(),
            8
        );
        assert_eq!(
            EXAMPLES.iter().filter(|e| e.0 == livedesk::SOURCE).count(),
            5
        );
        for (source, name, _) in EXAMPLES {
            assert!(example_or_file(*source, name).is_ok(), "{name}");
        }
    }

    #[test]
    fn unknown_event_lists_the_known_ones() {
        let err = example_or_file(chatbrick::SOURCE, "no.such.event").unwrap_err();
        assert!(err.to_string().contains("store.created"), "{err}");
    }

    #[test]
    fn uuid_has_version_and_variant() {
        let id = uuid_like(u128::MAX);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }
}
