//! The provider-neutral event record that travels from intake through the inbox to the handlers.

use serde::Serialize;

/// Ids that say what an event is about: what the `log` handler prints and what operators grep for.
///
/// Every field is optional because each event type carries only some of them.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct KeyIds {
    /// ChatBrick contact id or liveDesk contact id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// ChatBrick store id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// ChatBrick staff account id or liveDesk account id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// liveDesk conversation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    /// liveDesk message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Personal data an event carries: names and message text.
///
/// Kept apart from [`KeyIds`] so that the log handler prints it only when the operator opts in.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PersonalData {
    /// The most relevant person's name (contact, staff member or sender).
    pub name: Option<String>,
    /// Message text, for message events.
    pub content: Option<String>,
}

use std::sync::OnceLock;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{chatbrick, livedesk};

/// Which provider sent an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// ChatBrick (Svix, Standard Webhooks).
    Chatbrick,
    /// liveDesk (Chatwoot).
    Livedesk,
}

impl Source {
    /// The lowercase name used in URLs, the store, routes and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Chatbrick => "chatbrick",
            Source::Livedesk => "livedesk",
        }
    }
}

impl std::str::FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "chatbrick" => Ok(Source::Chatbrick),
            "livedesk" => Ok(Source::Livedesk),
            other => Err(format!(
                "unknown source {other:?} (expected chatbrick or livedesk)"
            )),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body decoded into the provider's types, or why it could not be.
// Almost every event is one of the large variants, so boxing them would add an allocation to
// nearly every request to save memory only on the rare undecodable one.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum TypedEvent {
    /// A ChatBrick event (documented or not).
    Chatbrick(chatbrick::Event),
    /// A liveDesk event (documented or not).
    Livedesk(livedesk::Event),
    /// Authentic, but the body does not fit the types: stored and routed raw, flagged.
    Undecodable {
        /// The decode error, for the inspector and logs.
        error: String,
    },
}

impl TypedEvent {
    /// Decodes a body of the given source; never fails, flags instead.
    pub fn decode(source: Source, body: &[u8]) -> TypedEvent {
        let result = match source {
            Source::Chatbrick => chatbrick::Event::decode(body)
                .map(TypedEvent::Chatbrick)
                .map_err(|e| e.to_string()),
            Source::Livedesk => livedesk::Event::decode(body)
                .map(TypedEvent::Livedesk)
                .map_err(|e| e.to_string()),
        };
        result.unwrap_or_else(|error| TypedEvent::Undecodable { error })
    }

    /// The decode error, when the body did not fit.
    pub fn decode_error(&self) -> Option<&str> {
        match self {
            TypedEvent::Undecodable { error } => Some(error),
            _ => None,
        }
    }

    /// Ids the event is about (empty when undecodable).
    pub fn key_ids(&self) -> KeyIds {
        match self {
            TypedEvent::Chatbrick(e) => e.key_ids(),
            TypedEvent::Livedesk(e) => e.key_ids(),
            TypedEvent::Undecodable { .. } => KeyIds::default(),
        }
    }

    /// Names and message text (empty when undecodable).
    pub fn personal(&self) -> PersonalData {
        match self {
            TypedEvent::Chatbrick(e) => e.personal(),
            TypedEvent::Livedesk(e) => e.personal(),
            TypedEvent::Undecodable { .. } => PersonalData::default(),
        }
    }
}

/// Event type recorded for a body whose type cannot even be read.
pub const UNKNOWN_TYPE: &str = "unknown";

/// The wire event type of a body: from the decoded event, or read leniently from an undecodable one.
pub fn event_type_of(source: Source, event: &TypedEvent, body: &[u8]) -> String {
    match event {
        TypedEvent::Chatbrick(e) => e.event_type().to_owned(),
        TypedEvent::Livedesk(e) => e.event_type().to_owned(),
        TypedEvent::Undecodable { .. } => match source {
            Source::Chatbrick => chatbrick::event::peek_type(body),
            Source::Livedesk => livedesk::event::peek_type(body),
        }
        .unwrap_or_else(|| UNKNOWN_TYPE.to_owned()),
    }
}

/// Longest provider id that [`event_id`] embeds as it is; longer ones are hashed.
const MAX_EMBEDDED_ID: usize = 96;

/// hookline's own id for an event: stable for one provider message, whatever the retry, replay
/// or store it passes through, so that handlers can dedupe on it (it is the `webhook-id` hookline
/// forwards with).
///
/// It embeds the provider's id when that is short and URL-safe (`evt_cb_msg_2Xk…` for ChatBrick,
/// `evt_ld_…` for liveDesk): providers' ids are time-ordered (Svix uses KSUIDs), so the store's
/// unique index grows at its end instead of being written at random pages. Other ids are hashed
/// (`evt_cb~<hex>`).
pub fn event_id(source: Source, provider_id: &str) -> String {
    let code = match source {
        Source::Chatbrick => "cb",
        Source::Livedesk => "ld",
    };
    let url_safe = !provider_id.is_empty()
        && provider_id.len() <= MAX_EMBEDDED_ID
        && provider_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if url_safe {
        format!("evt_{code}_{provider_id}")
    } else {
        let digest = Sha256::digest(provider_id.as_bytes());
        // `~` never appears in the embedded form, so a hash can never equal an embedded id.
        format!("evt_{code}~{}", hex::encode(&digest[..16]))
    }
}

/// The provider id of a liveDesk request without `X-Chatwoot-Delivery`: a hash of the body, so
/// that the same body sent twice is recognised as a duplicate.
pub fn body_hash_id(body: &[u8]) -> String {
    format!("sha256-{}", hex::encode(Sha256::digest(body)))
}

/// One received event: what handlers get, and what the inbox stores.
///
/// The typed event is decoded at intake (routing and flagging need it) and, for events read
/// back from the store, only when a handler first asks for it: the forward handler, which sends
/// the raw bytes, never pays for decoding.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// hookline's stable event id (`evt_…`), see [`event_id`].
    pub id: String,
    /// Which provider sent it.
    pub source: Source,
    /// Which endpoint received it (`default` for the unnamed one).
    pub endpoint: String,
    /// The provider's id: `svix-id`/`webhook-id`, `X-Chatwoot-Delivery`, or the body hash.
    pub provider_id: String,
    /// Wire event type (`contact.connection.connected`, `message_created`, …, or `unknown`).
    pub event_type: String,
    /// When hookline received it.
    pub received_at: DateTime<Utc>,
    /// Why the body does not fit the event types, when it does not.
    pub decode_error: Option<String>,
    /// The exact bytes the provider sent.
    pub body: Bytes,
    /// The typed event, decoded once on first use. Boxed: the largest liveDesk event is ~2 KB,
    /// and an envelope moves through several futures on its way to the store; inline, every
    /// such move copied the whole event (and the request's future grew by as much).
    event: OnceLock<Box<TypedEvent>>,
}

impl Envelope {
    /// Builds the record for an authenticated body: decodes it and derives the ids.
    pub fn new(
        source: Source,
        endpoint: &str,
        provider_id: String,
        received_at: DateTime<Utc>,
        body: Bytes,
    ) -> Envelope {
        let event = Box::new(TypedEvent::decode(source, &body));
        let event_type = event_type_of(source, &event, &body);
        Envelope {
            id: event_id(source, &provider_id),
            source,
            endpoint: endpoint.to_owned(),
            provider_id,
            event_type,
            received_at,
            decode_error: event.decode_error().map(str::to_owned),
            body,
            event: OnceLock::from(event),
        }
    }

    /// Rebuilds a stored record without decoding the body (see [`Envelope::event`]).
    pub fn restore(
        source: Source,
        endpoint: String,
        provider_id: String,
        event_type: String,
        received_at: DateTime<Utc>,
        decode_error: Option<String>,
        body: Bytes,
    ) -> Envelope {
        Envelope {
            id: event_id(source, &provider_id),
            source,
            endpoint,
            provider_id,
            event_type,
            received_at,
            decode_error,
            body,
            event: OnceLock::new(),
        }
    }

    /// The body decoded into the provider's types (or the decode error).
    pub fn event(&self) -> &TypedEvent {
        self.event
            .get_or_init(|| Box::new(TypedEvent::decode(self.source, &self.body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_is_stable_and_source_scoped() {
        let a = event_id(Source::Chatbrick, "msg_2Xk9");
        assert_eq!(a, "evt_cb_msg_2Xk9");
        assert_eq!(a, event_id(Source::Chatbrick, "msg_2Xk9"));
        assert_ne!(a, event_id(Source::Livedesk, "msg_2Xk9"));
        let uuid = "1d484823-da29-4086-a7ba-d65ad0ebb588";
        assert_eq!(event_id(Source::Livedesk, uuid), format!("evt_ld_{uuid}"));
    }

    #[test]
    fn unsafe_or_long_provider_ids_are_hashed() {
        for odd in ["a/b", "x y", "ünï", "", &"a".repeat(97)] {
            let id = event_id(Source::Chatbrick, odd);
            assert!(id.starts_with("evt_cb~") && id.len() == 7 + 32, "{id}");
        }
        assert_ne!(
            event_id(Source::Chatbrick, "a/b"),
            event_id(Source::Chatbrick, "a/c")
        );
    }

    #[test]
    fn an_envelope_is_small_whatever_event_it_carries() {
        // It is moved through the request's futures, into an `Arc`, into store jobs: the
        // decoded event (up to ~2 KB) stays behind a pointer.
        assert!(std::mem::size_of::<TypedEvent>() > 1024);
        assert!(
            std::mem::size_of::<Envelope>() <= 256,
            "{}",
            std::mem::size_of::<Envelope>()
        );
    }

    #[test]
    fn body_hash_differs_per_body() {
        assert_ne!(body_hash_id(b"{}"), body_hash_id(b"{ }"));
    }
}
