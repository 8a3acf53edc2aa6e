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
//! concerns; the generic ones are the lenient deserializers both providers share
//! (`sources::lenient`), the others are here:
//! - `flexible_time`: every time field accepts integer or float epoch seconds (a float keeps its
//!   microseconds), numeric strings and ISO 8601 strings; `0`, `""`, `null` and absent are `None`.
//! - wire enums ([`ConversationStatus`], [`Priority`], [`MessageType`], [`SenderType`]) accept their
//!   name or Chatwoot's integer code, and keep unknown values in `Other`.
//! - [`FreeForm`] takes arbitrary JSON objects, with `[]` and `null` read as empty.
//! - `non_empty`: `""` in avatars, thumbnails and URLs is `None`.
//! - `null_default`: a `null` list or object is an empty one.
//! - `changes`: `changed_attributes` (a list of one-key objects, or null) as a flat list.
//!
//! No struct denies unknown fields: liveDesk adds keys over time.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::envelope::{KeyIds, PersonalData};
use crate::sources::lenient::{self, wire_enum};

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

    /// The event's wire name, e.g. `message_created`: what routes match on.
    pub fn event_type(&self) -> &str {
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
    pub fn key_ids(&self) -> KeyIds {
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
    pub fn personal(&self) -> PersonalData {
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
    let EventName(name) =
        serde_json::from_slice(body).map_err(|e| DecodeError(ErrorKind::NotJson(e)))?;
    name.ok_or(DecodeError(ErrorKind::NoEventType))
}

/// The `event` of a body (`None` when absent or not a string); other keys are skipped unbuilt.
struct EventName(Option<String>);

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EventNameVisitor)
    }
}

/// Walks the top-level object looking for `event`.
struct EventNameVisitor;

impl<'de> Visitor<'de> for EventNameVisitor {
    type Value = EventName;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventName, A::Error> {
        let mut name = None;
        while let Some(key) = map.next_key::<TopKey>()? {
            match key {
                TopKey::Event => {
                    name = match map.next_value()? {
                        Value::String(s) => Some(s),
                        _ => None,
                    }
                }
                TopKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(EventName(name))
    }
}

/// A top-level key, read without allocating.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum TopKey {
    /// The event name.
    Event,
    /// Anything else.
    #[serde(other)]
    Other,
}

/// A liveDesk conversation: the body of conversation events, embedded in message and typing events.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Conversation {
    /// The per-account display number (`#89` in the agent UI), not a global id.
    pub id: i64,
    /// The inbox (for liveDesk, the API channel) the conversation belongs to.
    pub inbox_id: Option<i64>,
    /// The liveDesk account; liveDesk adds it to Chatwoot's shape.
    pub account: Option<AccountRef>,
    /// Where the conversation stands; after `conversation_status_changed`, the new status.
    /// Required: a conversation without one is not guessed open.
    pub status: ConversationStatus,
    /// The agent-set priority; `None` when unset.
    pub priority: Option<Priority>,
    /// The channel type, e.g. `Channel::Api`.
    pub channel: Option<String>,
    /// Whether an agent can still reply (channels with a messaging window close it).
    pub can_reply: Option<bool>,
    /// The contact's link to the inbox; its `source_id` is the integrator's id for the contact.
    pub contact_inbox: Option<ContactInbox>,
    /// The last public message (0 or 1 entries), in Chatwoot's raw record shape.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub messages: Vec<ConversationMessage>,
    /// Names of the labels attached to the conversation.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub labels: Vec<String>,
    /// Who takes part: the contact (`sender`), the assigned agent and team.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub meta: Meta,
    /// Free-form data Chatwoot collects (browser, referer, …).
    #[serde(default)]
    pub additional_attributes: FreeForm,
    /// Account-defined custom attributes.
    #[serde(default)]
    pub custom_attributes: FreeForm,
    /// liveDesk's ticket data, when the conversation became a ticket.
    #[serde(default)]
    pub ticket_info: FreeForm,
    /// liveDesk's conversation category, e.g. `chat`.
    pub conversation_category: Option<String>,
    /// liveDesk's chat mode, e.g. `private_chat`.
    pub chat_mode: Option<String>,
    /// Messages the agents have not read yet.
    pub unread_count: Option<i64>,
    /// When a snoozed conversation reopens; `None` when not snoozed or snoozed indefinitely.
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub snoozed_until: Option<DateTime<Utc>>,
    /// When an agent first replied; `None` until then.
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub first_reply_created_at: Option<DateTime<Utc>>,
    /// Since when the contact has been waiting for a reply; `None` when nobody is waiting.
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub waiting_since: Option<DateTime<Utc>>,
    /// When an agent last looked at it; `None` for never.
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub agent_last_seen_at: Option<DateTime<Utc>>,
    /// When the contact last looked at it; `None` for never.
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub contact_last_seen_at: Option<DateTime<Utc>>,
    /// The last activity (message, status change, …).
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Chatwoot's sort timestamp (the last activity).
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub timestamp: Option<DateTime<Utc>>,
    /// When the conversation was created.
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// When the conversation last changed, to the microsecond: what orders states of one
    /// conversation, since deliveries arrive in no particular order.
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Conversation {
    /// The ids of the conversation, its account and its contact.
    fn key_ids(&self) -> KeyIds {
        KeyIds {
            account: text(self.account.as_ref().map(|a| a.id)),
            conversation: Some(self.id.to_string()),
            contact: text(self.contact_id()),
            ..KeyIds::default()
        }
    }

    /// The contact's id: `meta.sender` when it is a contact, else the contact inbox's contact.
    fn contact_id(&self) -> Option<i64> {
        self.contact()
            .map(|s| s.id)
            .or(self.contact_inbox.as_ref()?.contact_id)
    }

    /// The contact's name, from `meta.sender` when it is a contact.
    fn contact_name(&self) -> Option<&str> {
        self.contact()?.name.as_deref()
    }

    /// `meta.sender` when it is a contact (as it always is in Chatwoot's shape).
    fn contact(&self) -> Option<&Sender> {
        self.meta.sender.as_ref().filter(|s| s.is_contact())
    }
}

/// The body of `conversation_updated`: the conversation as it is now, plus what changed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ConversationUpdate {
    /// The conversation after the change (the body's own keys).
    #[serde(flatten)]
    pub conversation: Conversation,
    /// What changed, one entry per field; empty when the sender sent null or nothing.
    #[serde(default, with = "changes")]
    pub changed_attributes: Vec<ChangedAttribute>,
}

impl ConversationUpdate {
    /// Decodes a body in two scans: `flatten` would buffer the whole conversation first and lose
    /// the error positions.
    fn from_body(body: &[u8]) -> serde_json::Result<Self> {
        let ChangesOnly { changed_attributes } = serde_json::from_slice(body)?;
        Ok(Self {
            conversation: serde_json::from_slice(body)?,
            changed_attributes,
        })
    }
}

/// The `changed_attributes` of a body, every other key skipped.
#[derive(Deserialize)]
struct ChangesOnly {
    /// See [`ConversationUpdate::changed_attributes`].
    #[serde(default, with = "changes")]
    changed_attributes: Vec<ChangedAttribute>,
}

/// One changed field of a `*_updated` event.
///
/// On the wire `changed_attributes` is a list of one-key objects
/// `{"<field>": {"previous_value": …, "current_value": …}}`; each key becomes one of these.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ChangedAttribute {
    /// The field's name, e.g. `status` or `waiting_since`.
    pub field: String,
    /// The value before, in whatever JSON type and encoding the sender used (times are often ISO
    /// strings here even where the object itself uses epoch seconds).
    pub previous_value: Value,
    /// The value after, as sent.
    pub current_value: Value,
}

/// An entry of `conversation.messages[]`: Chatwoot's raw message record, which differs from
/// [`Message`] (integer `message_type`, integer `created_at` beside an ISO `updated_at`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ConversationMessage {
    /// The message id (the same as [`Message::id`]).
    pub id: i64,
    /// The text; `None` for attachment-only messages.
    pub content: Option<String>,
    /// The text after Chatwoot's processing (e.g. variables replaced).
    pub processed_message_content: Option<String>,
    /// The account.
    pub account_id: Option<i64>,
    /// The inbox.
    pub inbox_id: Option<i64>,
    /// The conversation's display number.
    pub conversation_id: Option<i64>,
    /// Who the message is from (sent as an integer code here).
    pub message_type: MessageType,
    /// A private note, never shown to the contact.
    pub private: bool,
    /// Delivery status: `sent`, `delivered`, `read`, `failed`, …
    pub status: Option<String>,
    /// The id of the message in the channel's own system, if any.
    pub source_id: Option<String>,
    /// `text` or another content type.
    pub content_type: Option<String>,
    /// Content-type specific data (items, submitted values, …).
    #[serde(default)]
    pub content_attributes: FreeForm,
    /// Free-form extra data.
    #[serde(default)]
    pub additional_attributes: FreeForm,
    /// Ids of the message in external systems.
    #[serde(default)]
    pub external_source_ids: FreeForm,
    /// Sentiment analysis results, when enabled.
    #[serde(default)]
    pub sentiment: FreeForm,
    /// The sender's kind, as a class name (`User`, `Contact`, …).
    pub sender_type: Option<SenderType>,
    /// The sender's id.
    pub sender_id: Option<i64>,
    /// The sender, when embedded.
    pub sender: Option<Sender>,
    /// Files attached, if any.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub attachments: Vec<Attachment>,
    /// liveDesk's conversation topic.
    pub conversation_topic_id: Option<i64>,
    /// When the message was created (epoch seconds on the wire).
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// When the message last changed (ISO string on the wire).
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// A message: the body of `message_created` and `message_updated`.
///
/// A bridge to a customer-facing chat usually wants only `message_type == Outgoing` and
/// `!private`: the webhook also echoes the integrator's own incoming messages and private notes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Message {
    /// The message id, unique across the installation.
    pub id: i64,
    /// The text; `None` for attachment-only messages.
    pub content: Option<String>,
    /// `text` or another content type (`input_select`, `cards`, `form`, …).
    pub content_type: Option<String>,
    /// Content-type specific data (items, submitted values, …).
    #[serde(default)]
    pub content_attributes: FreeForm,
    /// Free-form extra data.
    #[serde(default)]
    pub additional_attributes: FreeForm,
    /// Who the message is from.
    pub message_type: MessageType,
    /// A private note, never shown to the contact. Required: a body that does not say is not
    /// guessed public.
    pub private: bool,
    /// The id of the message in the channel's own system, if any.
    pub source_id: Option<String>,
    /// When the message was created.
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// Who sent it (agent, contact, bot); `None` for system messages.
    pub sender: Option<Sender>,
    /// The inbox (API channel) of the conversation.
    pub inbox: Option<InboxRef>,
    /// The liveDesk account.
    pub account: Option<AccountRef>,
    /// The conversation the message belongs to.
    pub conversation: Option<Conversation>,
    /// Files attached; empty when the key is absent, which is how the sender says "none".
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub attachments: Vec<Attachment>,
    /// liveDesk's conversation topic.
    pub conversation_topic_id: Option<i64>,
    /// A liveDesk id for the conversation's contact link (it matches `contact_inbox.id`).
    pub user_id: Option<i64>,
    /// The conversation's contact (liveDesk adds it).
    pub contact_id: Option<i64>,
    /// liveDesk's participants, in a shape it does not document.
    #[serde(default)]
    pub participants: Value,
}

impl Message {
    /// The ids of the message, its conversation, account and contact.
    fn key_ids(&self) -> KeyIds {
        let conversation = self.conversation.as_ref();
        let account = self
            .account
            .as_ref()
            .or(conversation.and_then(|c| c.account.as_ref()));
        let contact_sender = self
            .sender
            .as_ref()
            .filter(|s| s.is_contact())
            .map(|s| s.id);
        let contact = self
            .contact_id
            .or(contact_sender)
            .or(conversation.and_then(Conversation::contact_id));
        KeyIds {
            account: text(account.map(|a| a.id)),
            conversation: text(conversation.map(|c| c.id)),
            message: Some(self.id.to_string()),
            contact: text(contact),
            ..KeyIds::default()
        }
    }

    /// The sender's name (else the contact's) and the text.
    fn personal(&self) -> PersonalData {
        let sender = self.sender.as_ref().and_then(|s| s.name.as_deref());
        let contact = self
            .conversation
            .as_ref()
            .and_then(Conversation::contact_name);
        PersonalData {
            name: sender.or(contact).map(str::to_owned),
            content: self.content.clone(),
        }
    }
}

/// Who sent a message, the conversation's contact (`meta.sender`) or assignee, or who is typing.
///
/// Chatwoot sends several shapes (user, contact, agent bot, Captain assistant); the fields any of
/// them lacks are `None`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Sender {
    /// The id among senders of the same kind (a user and a contact may share an id).
    pub id: i64,
    /// The name.
    pub name: Option<String>,
    /// An agent's display name.
    pub available_name: Option<String>,
    /// The e-mail address.
    pub email: Option<String>,
    /// A contact's phone number.
    pub phone_number: Option<String>,
    /// A contact's identifier in the integrator's system.
    pub identifier: Option<String>,
    /// The kind of sender; absent for contacts in some shapes (then [`Sender::is_contact`]).
    #[serde(rename = "type")]
    pub type_: Option<SenderType>,
    /// Avatar URL; `None` when empty.
    #[serde(default, deserialize_with = "lenient::non_empty")]
    pub avatar: Option<String>,
    /// Avatar URL; `None` when empty.
    #[serde(default, deserialize_with = "lenient::non_empty")]
    pub avatar_url: Option<String>,
    /// Thumbnail URL; `None` when empty.
    #[serde(default, deserialize_with = "lenient::non_empty")]
    pub thumbnail: Option<String>,
    /// An agent's presence (`online`, `busy`, `offline`).
    pub availability_status: Option<String>,
    /// An agent's presence as liveDesk spells it.
    pub availability: Option<String>,
    /// Whether a contact is blocked.
    pub blocked: Option<bool>,
    /// A contact's free-form data.
    #[serde(default)]
    pub additional_attributes: FreeForm,
    /// A contact's custom attributes.
    #[serde(default)]
    pub custom_attributes: FreeForm,
}

impl Sender {
    /// Whether this is a contact: typed `contact`, or untyped (only Chatwoot's contact shape omits
    /// `type`).
    pub fn is_contact(&self) -> bool {
        matches!(self.type_, None | Some(SenderType::Contact))
    }
}

/// The body of `conversation_typing_on` / `conversation_typing_off`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Typing {
    /// Who is typing: an agent or the contact.
    pub user: Option<Sender>,
    /// Where.
    pub conversation: Conversation,
    /// Whether an agent is typing a private note (not to be shown to the contact). Required, like
    /// [`Message::private`].
    pub is_private: bool,
}

/// A contact: the body of `contact_created` / `contact_updated`, and embedded in other events.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Contact {
    /// The contact id.
    pub id: i64,
    /// The name.
    pub name: Option<String>,
    /// The e-mail address.
    pub email: Option<String>,
    /// The phone number.
    pub phone_number: Option<String>,
    /// The contact's identifier in the integrator's system.
    pub identifier: Option<String>,
    /// `contact` when present.
    #[serde(rename = "type")]
    pub type_: Option<SenderType>,
    /// Avatar URL; `None` when empty.
    #[serde(default, deserialize_with = "lenient::non_empty")]
    pub avatar: Option<String>,
    /// Thumbnail URL; `None` when empty.
    #[serde(default, deserialize_with = "lenient::non_empty")]
    pub thumbnail: Option<String>,
    /// Whether the contact is blocked.
    pub blocked: Option<bool>,
    /// The account.
    pub account: Option<AccountRef>,
    /// Free-form data.
    #[serde(default)]
    pub additional_attributes: FreeForm,
    /// Custom attributes.
    #[serde(default)]
    pub custom_attributes: FreeForm,
    /// What changed (in `contact_updated`); empty otherwise.
    #[serde(default, with = "changes")]
    pub changed_attributes: Vec<ChangedAttribute>,
}

impl Contact {
    /// The ids of the contact and its account.
    fn key_ids(&self) -> KeyIds {
        KeyIds {
            contact: Some(self.id.to_string()),
            account: text(self.account.as_ref().map(|a| a.id)),
            ..KeyIds::default()
        }
    }
}

/// An inbox: the body of `inbox_created` / `inbox_updated` (Chatwoot's inbox presenter).
///
/// Chatwoot's presenter sends the inbox's settings and may omit `id` and `name`, hence every field
/// is optional.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Inbox {
    /// The inbox id, when sent.
    pub id: Option<i64>,
    /// The inbox name, when sent.
    pub name: Option<String>,
    /// The channel record (type, URLs, settings); may hold secrets, so do not log it.
    #[serde(default)]
    pub channel: FreeForm,
    /// The inbox time zone, e.g. `UTC`.
    pub timezone: Option<String>,
    /// Whether a greeting is sent to new conversations.
    pub greeting_enabled: Option<bool>,
    /// The greeting.
    pub greeting_message: Option<String>,
    /// Whether conversations are auto-assigned.
    pub enable_auto_assignment: Option<bool>,
    /// Auto-assignment settings.
    #[serde(default)]
    pub auto_assignment_config: FreeForm,
    /// Whether working hours apply.
    pub working_hours_enabled: Option<bool>,
    /// The working hours, in Chatwoot's shape.
    #[serde(default)]
    pub working_hours: Value,
    /// The reply outside working hours.
    pub out_of_office_message: Option<String>,
    /// When the inbox was created.
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// When the inbox last changed.
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub updated_at: Option<DateTime<Utc>>,
    /// What changed (in `inbox_updated`); empty otherwise.
    #[serde(default, with = "changes")]
    pub changed_attributes: Vec<ChangedAttribute>,
}

/// The body of `webwidget_triggered`: a contact's link to a website-widget inbox, plus what the
/// widget reported.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct WebwidgetTriggered {
    /// The contact inbox id.
    pub id: Option<i64>,
    /// The contact's id in the widget channel.
    pub source_id: Option<String>,
    /// The visitor.
    pub contact: Option<Contact>,
    /// The widget's inbox.
    pub inbox: Option<InboxRef>,
    /// The account.
    pub account: Option<AccountRef>,
    /// The contact's latest conversation in that inbox, if any.
    pub current_conversation: Option<Conversation>,
    /// What the widget reported (referer, browser, language, …).
    #[serde(default)]
    pub event_info: FreeForm,
}

impl WebwidgetTriggered {
    /// The ids of the contact, account and current conversation.
    fn key_ids(&self) -> KeyIds {
        KeyIds {
            contact: text(self.contact.as_ref().map(|c| c.id)),
            account: text(self.account.as_ref().map(|a| a.id)),
            conversation: text(self.current_conversation.as_ref().map(|c| c.id)),
            ..KeyIds::default()
        }
    }
}

/// A reference to a liveDesk account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AccountRef {
    /// The account id; liveDesk's exceed 32 bits.
    pub id: i64,
    /// The account name.
    pub name: Option<String>,
}

/// A reference to an inbox.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct InboxRef {
    /// The inbox id.
    pub id: i64,
    /// The inbox name.
    pub name: Option<String>,
}

/// A reference to a team.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TeamRef {
    /// The team id.
    pub id: i64,
    /// The team name.
    pub name: Option<String>,
}

/// A conversation's `meta`: who takes part.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Meta {
    /// The conversation's contact.
    pub sender: Option<Sender>,
    /// The assigned agent, if any.
    pub assignee: Option<Sender>,
    /// The assigned team, if any.
    pub team: Option<TeamRef>,
    /// Whether the contact's identity was verified by HMAC.
    pub hmac_verified: Option<bool>,
    /// The channel type.
    pub channel: Option<String>,
}

/// A contact's link to an inbox.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ContactInbox {
    /// The link's id.
    pub id: Option<i64>,
    /// The contact.
    pub contact_id: Option<i64>,
    /// The inbox.
    pub inbox_id: Option<i64>,
    /// The contact's id in the channel: for the API channel, the integrator's own id.
    pub source_id: Option<String>,
    /// Whether the contact's identity was verified by HMAC.
    pub hmac_verified: Option<bool>,
    /// The token of the contact's realtime channel; a credential, do not log it.
    pub pubsub_token: Option<String>,
    /// When the link was created.
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// When the link last changed.
    #[serde(default, deserialize_with = "lenient::flexible_time")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// A file (or location, contact card, …) attached to a message.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Attachment {
    /// The attachment id.
    pub id: i64,
    /// The message it belongs to.
    pub message_id: Option<i64>,
    /// `image`, `audio`, `video`, `file`, `location`, `fallback`, `contact`, …
    pub file_type: Option<String>,
    /// The account.
    pub account_id: Option<i64>,
    /// The file extension, if known.
    pub extension: Option<String>,
    /// Where to download the file; `None` when empty.
    #[serde(default, deserialize_with = "lenient::non_empty")]
    pub data_url: Option<String>,
    /// Where to download a thumbnail; `None` when empty.
    #[serde(default, deserialize_with = "lenient::non_empty")]
    pub thumb_url: Option<String>,
    /// The size in bytes.
    pub file_size: Option<i64>,
    /// An image's width, as the sender's metadata has it (integer or float).
    pub width: Option<Number>,
    /// An image's height, as the sender's metadata has it (integer or float).
    pub height: Option<Number>,
    /// A location's latitude.
    pub coordinates_lat: Option<f64>,
    /// A location's longitude.
    pub coordinates_long: Option<f64>,
    /// The text shown for locations, contact cards and unsupported content.
    pub fallback_title: Option<String>,
}

/// A free-form JSON object (`additional_attributes`, `custom_attributes`, `content_attributes`,
/// `ticket_info`, `sentiment`, …).
///
/// Decoding: an object is kept as is; `[]` (how the sender writes an empty one in places), `null`
/// and an absent key are an empty object; any other value (a non-empty array, a string, a number)
/// is kept verbatim in [`FreeForm::Unexpected`] instead of failing the whole event. Serializing
/// writes the object (so `[]` comes back as `{}`) or the unexpected value unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FreeForm {
    /// The documented shape: an object, possibly empty.
    Object(Map<String, Value>),
    /// Anything else the sender put there, kept so that nothing is lost.
    Unexpected(Value),
}

impl Default for FreeForm {
    fn default() -> Self {
        Self::Object(Map::new())
    }
}

impl FreeForm {
    /// The value under `key`, when this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?.get(key)
    }

    /// The object; `None` when the sender sent something else.
    pub fn as_object(&self) -> Option<&Map<String, Value>> {
        match self {
            Self::Object(map) => Some(map),
            Self::Unexpected(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for FreeForm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Object(map) => Self::Object(map),
            Value::Null => Self::default(),
            Value::Array(items) if items.is_empty() => Self::default(),
            other => Self::Unexpected(other),
        })
    }
}

wire_enum! {
    /// Where a conversation stands in the agents' workflow.
    pub enum ConversationStatus {
        /// Waiting for or being handled by an agent.
        Open = "open", code 0;
        /// Done.
        Resolved = "resolved", code 1;
        /// Not yet handed to an agent (e.g. a bot is handling it).
        Pending = "pending", code 2;
        /// Put aside until `snoozed_until` or the contact's next message.
        Snoozed = "snoozed", code 3;
    }
}

wire_enum! {
    /// A conversation's priority.
    pub enum Priority {
        /// Low.
        Low = "low", code 0;
        /// Medium.
        Medium = "medium", code 1;
        /// High.
        High = "high", code 2;
        /// Urgent.
        Urgent = "urgent", code 3;
    }
}

wire_enum! {
    /// Who a message is from: a string at top level, an integer code in `conversation.messages[]`.
    pub enum MessageType {
        /// From the contact (including what the integrator posted through the REST API).
        Incoming = "incoming", code 0;
        /// From an agent or bot, to be shown to the contact (unless private).
        Outgoing = "outgoing", code 1;
        /// A system note (assignment, status change, …).
        Activity = "activity", code 2;
        /// A template message (e.g. a greeting or a form).
        Template = "template", code 3;
    }
}

wire_enum! {
    /// The kind of a sender: `type` spells it in snake case, `sender_type` as a class name; both
    /// are accepted.
    pub enum SenderType {
        /// An agent.
        User = "user" | "User";
        /// An agent bot.
        AgentBot = "agent_bot" | "AgentBot";
        /// The contact.
        Contact = "contact" | "Contact";
        /// A Captain (AI) assistant.
        CaptainAssistant = "captain_assistant" | "Captain::Assistant";
    }
}

/// `changed_attributes` on the wire: a list of one-key objects
/// `{"<field>": {"previous_value": …, "current_value": …}}`, or null; also accepted, a single
/// object of such keys. Read as a flat list of [`ChangedAttribute`], written back in the list shape.
mod changes {
    use super::{ChangedAttribute, Value};
    use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
    use serde::ser::{SerializeMap, Serializer};
    use serde::{Deserialize, Serialize};
    use std::fmt;

    /// Reads the wire shape.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<ChangedAttribute>, D::Error> {
        d.deserialize_any(ListVisitor)
    }

    /// Writes the wire shape.
    pub(super) fn serialize<S: Serializer>(
        list: &[ChangedAttribute],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(OneKey))
    }

    /// The before and after of one field.
    #[derive(Deserialize, Serialize)]
    struct Change<V> {
        /// The value before.
        #[serde(default)]
        previous_value: V,
        /// The value after.
        #[serde(default)]
        current_value: V,
    }

    /// One attribute written as a one-key object.
    struct OneKey<'a>(&'a ChangedAttribute);

    impl Serialize for OneKey<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let change = Change {
                previous_value: &self.0.previous_value,
                current_value: &self.0.current_value,
            };
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry(&self.0.field, &change)?;
            map.end()
        }
    }

    /// Reads null, the list, or a bare object.
    struct ListVisitor;

    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<ChangedAttribute>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(
                r#"a list of {"<field>": {"previous_value": …, "current_value": …}}, or null"#,
            )
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut list = Vec::new();
            while let Some(Entry(mut changes)) = seq.next_element()? {
                list.append(&mut changes);
            }
            Ok(list)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            EntryVisitor.visit_map(map).map(|Entry(changes)| changes)
        }
    }

    /// The changes in one list entry (normally one field).
    struct Entry(Vec<ChangedAttribute>);

    impl<'de> Deserialize<'de> for Entry {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(EntryVisitor)
        }
    }

    /// Reads `{"<field>": {"previous_value": …, "current_value": …}, …}`.
    struct EntryVisitor;

    impl<'de> Visitor<'de> for EntryVisitor {
        type Value = Entry;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(r#"{"<field>": {"previous_value": …, "current_value": …}}"#)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
            let mut changes = Vec::new();
            while let Some((field, change)) = map.next_entry::<String, Change<Value>>()? {
                changes.push(ChangedAttribute {
                    field,
                    previous_value: change.previous_value,
                    current_value: change.current_value,
                });
            }
            Ok(Entry(changes))
        }
    }
}

/// An optional id as text, the form [`KeyIds`] holds.
fn text(id: Option<i64>) -> Option<String> {
    id.map(|id| id.to_string())
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
    fn message_type_from_string_integer_and_unknown() {
        let parse = |json: &str| serde_json::from_str::<MessageType>(json).unwrap();
        assert_eq!(parse(r#""incoming""#), MessageType::Incoming);
        assert_eq!(parse(r#""template""#), MessageType::Template);
        assert_eq!(parse("0"), MessageType::Incoming);
        assert_eq!(parse("1"), MessageType::Outgoing);
        assert_eq!(parse("2"), MessageType::Activity);
        assert_eq!(parse("3"), MessageType::Template);
        assert_eq!(
            parse(r#""broadcast""#),
            MessageType::Other("broadcast".into())
        );
        assert_eq!(parse("7"), MessageType::Other("7".into()));
        assert!(serde_json::from_str::<MessageType>("null").is_err());
    }

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
    fn free_form_object_empty_array_null_and_other() {
        let parse = |json: &str| serde_json::from_str::<FreeForm>(json).unwrap();
        assert_eq!(parse("{}"), FreeForm::default());
        assert_eq!(parse("[]"), FreeForm::default());
        assert_eq!(parse("null"), FreeForm::default());
        assert_eq!(parse(r#"{"a": 1}"#).get("a"), Some(&Value::from(1)));
        assert_eq!(parse("[1]"), FreeForm::Unexpected(serde_json::json!([1])));
        assert_eq!(parse(r#""x""#).as_object(), None);
        assert_eq!(serde_json::to_string(&parse("[]")).unwrap(), "{}");
    }

    #[test]
    fn changed_attributes_list_null_bare_object_and_round_trip() {
        let parse = |json: &str| {
            serde_json::from_str::<ChangesOnly>(json)
                .unwrap()
                .changed_attributes
        };
        assert!(parse(r#"{"changed_attributes": null}"#).is_empty());
        assert!(parse("{}").is_empty());
        let list = parse(
            r#"{"changed_attributes": [{"status": {"previous_value": "open", "current_value": "resolved"}}, {"x": {}}]}"#,
        );
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].field, "status");
        assert_eq!(list[0].current_value, "resolved");
        assert_eq!(list[1].previous_value, Value::Null);
        let bare = parse(
            r#"{"changed_attributes": {"status": {"previous_value": "open", "current_value": "resolved"}}}"#,
        );
        assert_eq!(bare, list[..1]);
        let update = ConversationUpdate {
            conversation: serde_json::from_str(r#"{"id": 1, "status": "open"}"#).unwrap(),
            changed_attributes: list.clone(),
        };
        let wire = serde_json::to_value(&update).unwrap();
        assert_eq!(
            wire["changed_attributes"][0]["status"]["current_value"],
            "resolved"
        );
        assert_eq!(
            serde_json::from_value::<ConversationUpdate>(wire).unwrap(),
            update
        );
        assert!(
            serde_json::from_str::<ChangesOnly>(r#"{"changed_attributes": ["status"]}"#).is_err()
        );
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
