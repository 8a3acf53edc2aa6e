//! Typed liveDesk events.
//!
//! liveDesk (EngageLab's helpdesk built on Chatwoot) posts one JSON object per event, with the
//! event's name in an `event` key that comes *last*. The body of a conversation event is the
//! conversation itself; the body of a message event is the message, which embeds its conversation.
//!
//! [`Event::decode`] first scans the bytes for `event` (skipping every other value without building
//! it), then deserializes the same bytes straight into the struct for that name. Two scans of the
//! text are cheaper than building a `serde_json::Value` tree and converting it, and errors keep
//! serde_json's line and column.
//!
//! The sender is loose with types, so each quirk has one helper, reused by every field it
//! concerns. The generic ones are the lenient deserializers both providers share
//! (`sources::lenient`):
//! - `flexible_time`: every time field accepts integer or float epoch seconds (a float keeps its
//!   microseconds), numeric strings and ISO 8601 strings; `0`, `""`, `null` and absent are `None`.
//! - wire enums ([`ConversationStatus`], [`Priority`], [`MessageType`], [`SenderType`]) accept their
//!   name or Chatwoot's integer code, and keep unknown values in `Other`.
//! - `non_empty`: `""` in avatars, thumbnails and URLs is `None`.
//! - `null_default`: a `null` list or object is an empty one.
//!
//! liveDesk's own shapes are read in this module's `wire`:
//! - [`FreeForm`] takes arbitrary JSON objects, with `[]` and `null` read as empty.
//! - `changes`: `changed_attributes` (a list of one-key objects, or null) as a flat list.
//!
//! No struct denies unknown fields: liveDesk adds keys over time.
//!
//! The types live in files by subject and are all reachable from here.

/// The bodies about an account's contacts and inboxes: contacts, inboxes, the website widget.
mod account;
/// The conversation and what it embeds.
mod conversation;
/// The message, the body of message events.
mod message;
/// The records several bodies embed: senders, attachments, references, changed fields.
mod parts;
/// liveDesk's own wire shapes: the `event` scan, `changed_attributes`, `[]` for an empty object.
mod wire;

use serde_json::Value;

use crate::envelope::{Card, CardField, KeyIds, PersonalData, ProviderEvent};

/// The keys of liveDesk bodies that hold personal data: names, e-mail addresses and phone
/// numbers of contacts and agents, their avatars, message text, and attachments.
pub(crate) const PERSONAL_KEYS: &[&str] = &[
    "name",
    "available_name",
    "email",
    "phone_number",
    "avatar",
    "avatar_url",
    "thumbnail",
    "content",
    "processed_message_content",
    "data_url",
    "thumb_url",
    "fallback_title",
];

pub use account::{Contact, Inbox, WebwidgetTriggered};
pub use conversation::{
    ContactInbox, Conversation, ConversationMessage, ConversationStatus, ConversationUpdate, Meta,
    Priority, Typing,
};
pub use message::Message;
pub use parts::{
    AccountRef, Attachment, ChangedAttribute, FreeForm, InboxRef, MessageType, Sender, SenderType,
    TeamRef,
};

/// One liveDesk webhook delivery, decoded.
///
/// Conversation events carry the conversation, message events the message (which embeds its
/// conversation). A body whose `event` this version does not know is [`Event::Other`], not an error,
/// so that new events still reach the handlers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// `conversation_created`: a new conversation, e.g. opened through the REST API.
    ConversationCreated(Conversation),
    /// `conversation_updated`: the conversation as it is now, plus what changed.
    ConversationUpdated(ConversationUpdate),
    /// `conversation_status_changed`: `status` holds the new value.
    ConversationStatusChanged(Conversation),
    /// `message_created`: a message, note or activity was added to a conversation.
    MessageCreated(Message),
    /// `message_updated`: a message was edited or changed status (liveDesk also sends one when it
    /// marks a message failed after a failed `message_created` delivery).
    MessageUpdated(Message),
    /// `conversation_typing_on` (Chatwoot 4.2+, undocumented by liveDesk).
    ConversationTypingOn(Typing),
    /// `conversation_typing_off` (Chatwoot 4.2+, undocumented by liveDesk).
    ConversationTypingOff(Typing),
    /// `contact_created` (a Chatwoot account webhook).
    ContactCreated(Contact),
    /// `contact_updated` (a Chatwoot account webhook), with its `changed_attributes`.
    ContactUpdated(Contact),
    /// `webwidget_triggered`: a visitor opened the website widget (a Chatwoot webhook).
    WebwidgetTriggered(WebwidgetTriggered),
    /// `inbox_created` (a Chatwoot account webhook).
    InboxCreated(Inbox),
    /// `inbox_updated` (a Chatwoot account webhook), with its `changed_attributes`.
    InboxUpdated(Inbox),
    /// Any other `event`: kept raw, never an error.
    Other {
        /// The `event` value as sent.
        event_type: String,
        /// The whole body, `event` key included.
        data: Value,
    },
}

impl Event {
    /// Decodes a webhook body.
    ///
    /// Fails only when the body is not a JSON object, has no string `event`, or is a known event
    /// whose body does not fit its type; an unknown `event` gives [`Event::Other`].
    pub fn decode(body: &[u8]) -> Result<Event, DecodeError> {
        let event_type = scan_event_type(body)?;
        Self::decode_as(&event_type, body)
            .map_err(|error| DecodeError(ErrorKind::Body { event_type, error }))
    }

    /// Deserializes `body` into the variant that `event_type` names.
    fn decode_as(event_type: &str, body: &[u8]) -> serde_json::Result<Event> {
        use serde_json::from_slice as parse;
        Ok(match event_type {
            "conversation_created" => Self::ConversationCreated(parse(body)?),
            "conversation_updated" => {
                Self::ConversationUpdated(ConversationUpdate::from_body(body)?)
            }
            "conversation_status_changed" => Self::ConversationStatusChanged(parse(body)?),
            "message_created" => Self::MessageCreated(parse(body)?),
            "message_updated" => Self::MessageUpdated(parse(body)?),
            "conversation_typing_on" => Self::ConversationTypingOn(parse(body)?),
            "conversation_typing_off" => Self::ConversationTypingOff(parse(body)?),
            "contact_created" => Self::ContactCreated(parse(body)?),
            "contact_updated" => Self::ContactUpdated(parse(body)?),
            "webwidget_triggered" => Self::WebwidgetTriggered(parse(body)?),
            "inbox_created" => Self::InboxCreated(parse(body)?),
            "inbox_updated" => Self::InboxUpdated(parse(body)?),
            _ => Self::Other {
                event_type: event_type.to_owned(),
                data: parse(body)?,
            },
        })
    }
}

impl crate::sources::Wire for Event {
    type Error = DecodeError;
    fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        Event::decode(body)
    }
    fn peek_type(body: &[u8]) -> Option<String> {
        peek_type(body)
    }
}

/// What the provider-neutral parts of hookline read from any event.
impl ProviderEvent for Event {
    /// The event's wire name, e.g. `message_created`: what routes match on.
    fn event_type(&self) -> &str {
        match self {
            Self::ConversationCreated(_) => "conversation_created",
            Self::ConversationUpdated(_) => "conversation_updated",
            Self::ConversationStatusChanged(_) => "conversation_status_changed",
            Self::MessageCreated(_) => "message_created",
            Self::MessageUpdated(_) => "message_updated",
            Self::ConversationTypingOn(_) => "conversation_typing_on",
            Self::ConversationTypingOff(_) => "conversation_typing_off",
            Self::ContactCreated(_) => "contact_created",
            Self::ContactUpdated(_) => "contact_updated",
            Self::WebwidgetTriggered(_) => "webwidget_triggered",
            Self::InboxCreated(_) => "inbox_created",
            Self::InboxUpdated(_) => "inbox_updated",
            Self::Other { event_type, .. } => event_type,
        }
    }

    /// The ids this event is about (account, conversation, message, contact), as strings.
    fn key_ids(&self) -> KeyIds {
        match self {
            Self::ConversationCreated(c) | Self::ConversationStatusChanged(c) => c.key_ids(),
            Self::ConversationUpdated(u) => u.conversation.key_ids(),
            Self::MessageCreated(m) | Self::MessageUpdated(m) => m.key_ids(),
            Self::ConversationTypingOn(t) | Self::ConversationTypingOff(t) => {
                t.conversation.key_ids()
            }
            Self::ContactCreated(c) | Self::ContactUpdated(c) => c.key_ids(),
            Self::WebwidgetTriggered(w) => w.key_ids(),
            Self::InboxCreated(_) | Self::InboxUpdated(_) | Self::Other { .. } => KeyIds::default(),
        }
    }

    /// The personal data the event carries: the sender's or contact's name, a message's text.
    fn personal(&self) -> PersonalData {
        match self {
            Self::ConversationCreated(c) | Self::ConversationStatusChanged(c) => {
                named(c.contact_name())
            }
            Self::ConversationUpdated(u) => named(u.conversation.contact_name()),
            Self::MessageCreated(m) | Self::MessageUpdated(m) => m.personal(),
            Self::ConversationTypingOn(t) | Self::ConversationTypingOff(t) => {
                named(t.user.as_ref().and_then(|u| u.name.as_deref()))
            }
            Self::ContactCreated(c) | Self::ContactUpdated(c) => named(c.name.as_deref()),
            Self::WebwidgetTriggered(w) => {
                named(w.contact.as_ref().and_then(|c| c.name.as_deref()))
            }
            Self::InboxCreated(_) | Self::InboxUpdated(_) | Self::Other { .. } => {
                PersonalData::default()
            }
        }
    }

    /// The conversation, who sent what, the message and its attachments, or the contact or
    /// inbox the event is about.
    fn card(&self) -> Vec<CardField> {
        let mut card = Card::default();
        match self {
            Self::ConversationCreated(c) | Self::ConversationStatusChanged(c) => c.card(&mut card),
            Self::ConversationUpdated(u) => u.card(&mut card),
            Self::MessageCreated(m) | Self::MessageUpdated(m) => m.card(&mut card),
            Self::ConversationTypingOn(t) | Self::ConversationTypingOff(t) => t.card(&mut card),
            Self::ContactCreated(c) | Self::ContactUpdated(c) => c.card(&mut card),
            Self::WebwidgetTriggered(w) => w.card(&mut card),
            Self::InboxCreated(i) | Self::InboxUpdated(i) => i.card(&mut card),
            Self::Other { .. } => {}
        }
        card.fields()
    }
}

/// The `event` string of a body, even when the body does not decode into its type: what the
/// server records for an undecodable event. `None` when the body is not a JSON object with a
/// string `event`.
pub fn peek_type(body: &[u8]) -> Option<String> {
    scan_event_type(body).ok()
}

/// Why a liveDesk body could not be decoded into an [`Event`].
///
/// The message names the event and includes serde_json's own (with line and column), so that an
/// operator can find the offending field in the stored raw body.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DecodeError(ErrorKind);

/// The cases behind a [`DecodeError`].
#[derive(Debug, thiserror::Error)]
enum ErrorKind {
    /// Not JSON, or JSON but not an object.
    #[error("liveDesk body is not a JSON object: {0}")]
    NotJson(serde_json::Error),
    /// An object without a string `event`.
    #[error("liveDesk body has no string `event` key")]
    NoEventType,
    /// A known event whose body does not fit its type.
    #[error("liveDesk `{event_type}` body does not fit its type: {error}")]
    Body {
        /// The body's `event`.
        event_type: String,
        /// serde_json's error, with line and column.
        error: serde_json::Error,
    },
}

/// Reads the `event` string in one pass that builds nothing but the name.
fn scan_event_type(body: &[u8]) -> Result<String, DecodeError> {
    let name = wire::event_name(body).map_err(|e| DecodeError(ErrorKind::NotJson(e)))?;
    name.ok_or(DecodeError(ErrorKind::NoEventType))
}

/// Personal data with only a name.
fn named(name: Option<&str>) -> PersonalData {
    PersonalData {
        name: name.map(str::to_owned),
        content: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_enums_serialize_as_their_name() {
        assert_eq!(
            serde_json::to_string(&MessageType::Outgoing).unwrap(),
            r#""outgoing""#
        );
        assert_eq!(
            serde_json::to_string(&Priority::Other("p0".into())).unwrap(),
            r#""p0""#
        );
        let class_name: SenderType = serde_json::from_str(r#""Captain::Assistant""#).unwrap();
        assert_eq!(class_name, SenderType::CaptainAssistant);
        assert_eq!(class_name.as_str(), "captain_assistant");
    }

    #[test]
    fn peek_reads_event_anywhere_and_only_strings() {
        assert_eq!(
            peek_type(br#"{"id": 1, "event": "x"}"#).as_deref(),
            Some("x")
        );
        assert_eq!(
            peek_type(br#"{"event": "x", "id": {"deep": [1, 2]}}"#).as_deref(),
            Some("x")
        );
        assert_eq!(peek_type(br#"{"event": 5}"#), None);
        assert_eq!(peek_type(br#"["event"]"#), None);
        assert_eq!(peek_type(b"not json"), None);
    }
}
