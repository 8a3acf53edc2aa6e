//! The provider-neutral event record that travels from intake through the inbox to the handlers.
//!
//! Nothing here knows a provider. A provider (a folder under `sources/`) describes itself with a
//! `SourceSpec`, decodes the bodies it authenticated into its own event types, and hands them
//! over as a [`Decoded`]: a [`ProviderEvent`] trait object, or why the body did not fit.

use std::any::Any;
use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

mod card;

pub use card::{Card, CardField};

/// What hookline needs to know about a provider to store, route and decode its events.
///
/// Each provider declares one as a `static` and refers to it through [`Source`].
#[derive(Debug)]
pub(crate) struct SourceSpec {
    /// The lowercase name used in URLs, the store, routes and metrics (`chatbrick`).
    pub name: &'static str,
    /// The short code in hookline's event ids (`evt_cb_…`), see [`event_id`].
    pub id_code: &'static str,
    /// Decodes an authenticated body into the provider's types. Never fails: a body that does not
    /// fit is [`Decoded::Undecodable`].
    pub decode: fn(&[u8]) -> Decoded,
    /// The keys of the provider's JSON objects that hold personal data (names, message text,
    /// phone numbers, e-mail addresses, avatars, attachments), wherever they appear in a body:
    /// what the inspector hides from a raw body, decodable or not, when told to.
    pub personal_keys: &'static [&'static str],
}

/// Which provider sent an event: a cheap, copyable handle to its `SourceSpec` (name, id
/// code, decoder).
///
/// Two sources are equal when their names are.
#[derive(Clone, Copy)]
pub struct Source(&'static SourceSpec);

impl Source {
    /// The source a provider's spec describes.
    pub(crate) const fn new(spec: &'static SourceSpec) -> Source {
        Source(spec)
    }

    /// The lowercase name used in URLs, the store, routes and metrics.
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    /// Decodes a body of this source.
    pub fn decode(self, body: &[u8]) -> Decoded {
        (self.0.decode)(body)
    }

    /// The JSON keys of this source's bodies that hold personal data.
    pub fn personal_keys(self) -> &'static [&'static str] {
        self.0.personal_keys
    }
}

impl PartialEq for Source {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Source {}

impl std::hash::Hash for Source {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name)
    }
}

/// The sources one build of hookline serves, to turn a stored name back into a [`Source`].
#[derive(Debug, Clone, Default)]
pub struct Sources(Vec<Source>);

impl Sources {
    /// A set of sources.
    pub(crate) fn new(sources: Vec<Source>) -> Sources {
        Sources(sources)
    }

    /// The source with this name, if this build serves it.
    pub fn get(&self, name: &str) -> Option<Source> {
        self.0.iter().copied().find(|s| s.as_str() == name)
    }

    /// Every source, in the order they were listed.
    pub fn iter(&self) -> impl Iterator<Item = Source> + '_ {
        self.0.iter().copied()
    }

    /// The names, for messages that list what is allowed.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.as_str()).collect()
    }
}

/// Stands in for the source of a stored event that this build does not serve (an event stored by
/// a build with another provider), so that the event is still delivered, raw.
pub const UNKNOWN_SOURCE: Source = Source::new(&UNKNOWN_SPEC);

/// The spec behind [`UNKNOWN_SOURCE`].
static UNKNOWN_SPEC: SourceSpec = SourceSpec {
    name: "unknown",
    id_code: "xx",
    decode: |_| Decoded::Undecodable {
        error: "this build of hookline serves no such source".into(),
        event_type: None,
    },
    personal_keys: &[],
};

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

/// A provider's decoded event, as the provider-neutral parts of hookline use it.
///
/// Handlers that want the provider's own type ask the envelope for it with [`Envelope::typed`].
pub trait ProviderEvent: Any + fmt::Debug + Send + Sync {
    /// The wire event type (`contact.connection.connected`, `message_created`, …).
    fn event_type(&self) -> &str;
    /// The ids the event is about.
    fn key_ids(&self) -> KeyIds;
    /// Names and message text.
    fn personal(&self) -> PersonalData;
    /// The event's key fields for the inspector's card. By default its ids, name and text;
    /// providers show their own fields.
    fn card(&self) -> Vec<CardField> {
        let (ids, personal) = (self.key_ids(), self.personal());
        let mut card = Card::default();
        card.field("Ids", "Contact", ids.contact)
            .field("Ids", "Store", ids.store)
            .field("Ids", "Account", ids.account)
            .field("Ids", "Conversation", ids.conversation)
            .field("Ids", "Message", ids.message)
            .personal("Ids", "Name", personal.name)
            .personal("Ids", "Content", personal.content);
        card.fields()
    }
}

/// The body decoded into the provider's types, or why it could not be.
#[derive(Debug)]
pub enum Decoded {
    /// A provider event (documented or not: providers keep unknown types as an `Other` variant).
    Event(Box<dyn ProviderEvent>),
    /// Authentic, but the body does not fit the types: stored and routed raw, flagged.
    Undecodable {
        /// The decode error, for the inspector and logs.
        error: String,
        /// The event type read leniently from the body, when even that was possible.
        event_type: Option<String>,
    },
}

impl Decoded {
    /// The outcome of a provider's decoder: its event, or its error with the type it could still
    /// read from the body.
    pub fn from_result<E: ProviderEvent, Err: fmt::Display>(
        result: Result<E, Err>,
        peek_type: impl FnOnce() -> Option<String>,
    ) -> Decoded {
        match result {
            Ok(event) => Decoded::Event(Box::new(event)),
            Err(error) => Decoded::Undecodable {
                error: error.to_string(),
                event_type: peek_type(),
            },
        }
    }

    /// The provider event, when the body decoded.
    pub fn event(&self) -> Option<&dyn ProviderEvent> {
        match self {
            Decoded::Event(event) => Some(event.as_ref()),
            Decoded::Undecodable { .. } => None,
        }
    }

    /// The decode error, when the body did not fit.
    pub fn error(&self) -> Option<&str> {
        match self {
            Decoded::Event(_) => None,
            Decoded::Undecodable { error, .. } => Some(error),
        }
    }

    /// The wire event type, or [`UNKNOWN_TYPE`] when the body does not even say.
    pub fn event_type(&self) -> &str {
        match self {
            Decoded::Event(event) => event.event_type(),
            Decoded::Undecodable { event_type, .. } => {
                event_type.as_deref().unwrap_or(UNKNOWN_TYPE)
            }
        }
    }

    /// Ids the event is about (empty when undecodable).
    pub fn key_ids(&self) -> KeyIds {
        self.event().map(|e| e.key_ids()).unwrap_or_default()
    }

    /// Names and message text (empty when undecodable).
    pub fn personal(&self) -> PersonalData {
        self.event().map(|e| e.personal()).unwrap_or_default()
    }

    /// The inspector's card (empty when undecodable).
    pub fn card(&self) -> Vec<CardField> {
        self.event().map(|e| e.card()).unwrap_or_default()
    }
}

/// Event type recorded for a body whose type cannot even be read.
pub const UNKNOWN_TYPE: &str = "unknown";

/// Longest provider id that [`event_id`] embeds as it is; longer ones are hashed.
const MAX_EMBEDDED_ID: usize = 96;

/// hookline's own id for an event: stable for one provider message, whatever the retry, replay
/// or store it passes through, so that handlers can dedupe on it (it is the `webhook-id` hookline
/// forwards with).
///
/// It embeds the provider's id when that is short and URL-safe (`evt_cb_msg_2Xk…` for ChatBrick,
/// `evt_ld_…` for liveDesk), so that an operator recognises the provider's id in it. Other ids
/// are hashed (`evt_cb~<hex>`).
pub fn event_id(source: Source, provider_id: &str) -> String {
    let code = source.0.id_code;
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

/// A provider id for a request that carries none: a hash of the body, so that the same body sent
/// twice is recognised as a duplicate.
pub fn body_hash_id(body: &[u8]) -> String {
    format!("sha256-{}", hex::encode(Sha256::digest(body)))
}

/// One received event: what handlers get, and what the inbox stores.
///
/// The typed event is decoded at intake (routing and flagging need it) and, for events read
/// back from the store, only when something first asks for it: the forward handler, which sends
/// the raw bytes, never pays for decoding.
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
    /// The body decoded, once, on first use (or at intake). The provider event inside is boxed:
    /// the largest liveDesk event is ~2 KB, and an envelope moves through several futures on its
    /// way to the store; inline, every such move would copy the whole event.
    decoded: OnceLock<Decoded>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("id", &self.id)
            .field("source", &self.source)
            .field("endpoint", &self.endpoint)
            .field("event_type", &self.event_type)
            .field("received_at", &self.received_at)
            .field("decode_error", &self.decode_error)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Envelope {
    /// The record of an authenticated body that its provider has decoded.
    pub fn new(
        source: Source,
        endpoint: &str,
        provider_id: String,
        received_at: DateTime<Utc>,
        body: Bytes,
        decoded: Decoded,
    ) -> Envelope {
        Envelope {
            id: event_id(source, &provider_id),
            source,
            endpoint: endpoint.to_owned(),
            provider_id,
            event_type: decoded.event_type().to_owned(),
            received_at,
            decode_error: decoded.error().map(str::to_owned),
            body,
            decoded: OnceLock::from(decoded),
        }
    }

    /// The record of an authenticated body, decoded now by its source.
    pub fn decode(
        source: Source,
        endpoint: &str,
        provider_id: String,
        received_at: DateTime<Utc>,
        body: Bytes,
    ) -> Envelope {
        let decoded = source.decode(&body);
        Envelope::new(source, endpoint, provider_id, received_at, body, decoded)
    }

    /// Rebuilds a stored record without decoding the body (see [`Envelope::decoded`]).
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
            decoded: OnceLock::new(),
        }
    }

    /// The body decoded into the provider's types (or the decode error).
    pub fn decoded(&self) -> &Decoded {
        self.decoded.get_or_init(|| self.source.decode(&self.body))
    }

    /// The body as the provider's own event type `E` (for example `hookline::chatbrick::Event`):
    /// `None` when the event is another provider's, or did not decode.
    pub fn typed<E: ProviderEvent>(&self) -> Option<&E> {
        let event: &dyn Any = self.decoded().event()?;
        event.downcast_ref::<E>()
    }

    /// Ids the event is about (empty when undecodable).
    pub fn key_ids(&self) -> KeyIds {
        self.decoded().key_ids()
    }

    /// Names and message text (empty when undecodable).
    pub fn personal(&self) -> PersonalData {
        self.decoded().personal()
    }
}

/// A source for the tests of provider-neutral modules, which must not depend on a real provider:
/// it reads the event type from a JSON object's `type` or `event` key.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// The decoded form of a test body.
    #[derive(Debug, PartialEq)]
    pub(crate) struct TestEvent {
        /// The body's `type` or `event`.
        pub(crate) event_type: String,
    }

    impl ProviderEvent for TestEvent {
        fn event_type(&self) -> &str {
            &self.event_type
        }
        fn key_ids(&self) -> KeyIds {
            KeyIds::default()
        }
        fn personal(&self) -> PersonalData {
            PersonalData::default()
        }
    }

    fn decode(body: &[u8]) -> Decoded {
        let value: Result<serde_json::Value, _> = serde_json::from_slice(body);
        let event_type = value.as_ref().ok().and_then(|v| {
            v.get("type")
                .or_else(|| v.get("event"))
                .and_then(|t| t.as_str())
                .map(str::to_owned)
        });
        match (value, event_type) {
            (Ok(_), Some(event_type)) => Decoded::Event(Box::new(TestEvent { event_type })),
            (Ok(_), None) => Decoded::Undecodable {
                error: "no type".into(),
                event_type: None,
            },
            (Err(e), _) => Decoded::Undecodable {
                error: e.to_string(),
                event_type: None,
            },
        }
    }

    /// A test source with this name and id code (leaked: tests only).
    pub(crate) fn source(name: &'static str, id_code: &'static str) -> Source {
        Source::new(Box::leak(Box::new(SourceSpec {
            name,
            id_code,
            decode,
            personal_keys: &["name"],
        })))
    }

    /// An envelope of a test source named `source`.
    pub(crate) fn envelope(
        source: &'static str,
        endpoint: &str,
        provider_id: &str,
        received_at: DateTime<Utc>,
        body: &'static [u8],
    ) -> Envelope {
        Envelope::decode(
            self::source(source, "tt"),
            endpoint,
            provider_id.into(),
            received_at,
            Bytes::from_static(body),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_is_stable_and_source_scoped() {
        let chatbrick = testing::source("chatbrick", "cb");
        let livedesk = testing::source("livedesk", "ld");
        let a = event_id(chatbrick, "msg_2Xk9");
        assert_eq!(a, "evt_cb_msg_2Xk9");
        assert_eq!(a, event_id(chatbrick, "msg_2Xk9"));
        assert_ne!(a, event_id(livedesk, "msg_2Xk9"));
        let uuid = "1d484823-da29-4086-a7ba-d65ad0ebb588";
        assert_eq!(event_id(livedesk, uuid), format!("evt_ld_{uuid}"));
    }

    #[test]
    fn unsafe_or_long_provider_ids_are_hashed() {
        let source = testing::source("chatbrick", "cb");
        for odd in ["a/b", "x y", "ünï", "", &"a".repeat(97)] {
            let id = event_id(source, odd);
            assert!(id.starts_with("evt_cb~") && id.len() == 7 + 32, "{id}");
        }
        assert_ne!(event_id(source, "a/b"), event_id(source, "a/c"));
    }

    #[test]
    fn body_hash_differs_per_body() {
        assert_ne!(body_hash_id(b"{}"), body_hash_id(b"{ }"));
    }

    #[test]
    fn a_restored_envelope_decodes_on_first_use_to_the_same_event() {
        let original = testing::envelope("test", "default", "m1", Utc::now(), br#"{"type":"a.b"}"#);
        let restored = Envelope::restore(
            original.source,
            original.endpoint.clone(),
            original.provider_id.clone(),
            original.event_type.clone(),
            original.received_at,
            None,
            original.body.clone(),
        );
        assert_eq!(restored.id, original.id);
        assert_eq!(
            restored.typed::<testing::TestEvent>(),
            original.typed::<testing::TestEvent>()
        );
        assert_eq!(restored.decoded().event_type(), "a.b");
    }

    #[test]
    fn an_undecodable_body_keeps_its_error_and_the_type_it_could_read() {
        let envelope = testing::envelope("test", "default", "m1", Utc::now(), b"not json");
        assert_eq!(envelope.event_type, UNKNOWN_TYPE);
        assert!(envelope.decode_error.is_some());
        assert!(envelope.typed::<testing::TestEvent>().is_none());
        assert_eq!(envelope.key_ids(), KeyIds::default());
    }

    #[test]
    fn sources_are_found_by_name_and_the_unknown_one_decodes_nothing() {
        let sources = Sources::new(vec![testing::source("chatbrick", "cb")]);
        assert_eq!(
            sources.get("chatbrick").map(Source::as_str),
            Some("chatbrick")
        );
        assert_eq!(sources.get("gone"), None);
        assert!(UNKNOWN_SOURCE.decode(b"{}").error().is_some());
    }
}
