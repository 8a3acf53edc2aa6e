//! The conversation: the body of the conversation events (created, status changed, updated,
//! typing) and embedded in message events, with what it embeds in turn (who takes part, the
//! contact's link to the inbox, the last message in Chatwoot's raw record shape).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::parts::{
    text, AccountRef, Attachment, ChangedAttribute, FreeForm, MessageType, Sender, SenderType,
    TeamRef,
};
use super::wire;
use crate::envelope::{Card, KeyIds};
use crate::sources::lenient::{self, wire_enum};

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
    pub(super) fn key_ids(&self) -> KeyIds {
        KeyIds {
            account: text(self.account.as_ref().map(|a| a.id)),
            conversation: Some(self.id.to_string()),
            contact: text(self.contact_id()),
            ..KeyIds::default()
        }
    }

    /// The contact's id: `meta.sender` when it is a contact, else the contact inbox's contact.
    pub(super) fn contact_id(&self) -> Option<i64> {
        self.contact()
            .map(|s| s.id)
            .or(self.contact_inbox.as_ref()?.contact_id)
    }

    /// The contact's name, from `meta.sender` when it is a contact.
    pub(super) fn contact_name(&self) -> Option<&str> {
        self.contact()?.name.as_deref()
    }

    /// `meta.sender` when it is a contact (as it always is in Chatwoot's shape).
    pub(super) fn contact(&self) -> Option<&Sender> {
        self.meta.sender.as_ref().filter(|s| s.is_contact())
    }

    /// The conversation's ids and status, as the card of an event that embeds it shows them.
    pub(super) fn summary(&self, card: &mut Card) {
        card.field("Conversation", "Conversation id", Some(self.id))
            .field("Conversation", "Status", Some(self.status.as_str()))
            .field("Conversation", "Inbox id", self.inbox_id)
            .field("Conversation", "Account id", self.account.as_ref().map(|a| a.id));
    }

    /// The conversation, its contact and its assignee.
    pub(super) fn card(&self, card: &mut Card) {
        self.summary(card);
        let labels = (!self.labels.is_empty()).then(|| self.labels.join(", "));
        card.field("Conversation", "Priority", self.priority.as_ref().map(|p| p.as_str()))
            .field("Conversation", "Labels", labels)
            .field("Conversation", "Contact source id", self.contact_inbox.as_ref().and_then(|c| c.source_id.as_ref()));
        if let Some(contact) = self.contact() {
            contact.card(card, "Contact");
        }
        if let Some(assignee) = &self.meta.assignee {
            assignee.card(card, "Assignee");
        }
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

/// The body of `conversation_updated`: the conversation as it is now, plus what changed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ConversationUpdate {
    /// The conversation after the change (the body's own keys).
    #[serde(flatten)]
    pub conversation: Conversation,
    /// What changed, one entry per field; empty when the sender sent null or nothing.
    #[serde(default, with = "wire::changes")]
    pub changed_attributes: Vec<ChangedAttribute>,
}

impl ConversationUpdate {
    /// The conversation and the names of the fields that changed.
    pub(super) fn card(&self, card: &mut Card) {
        self.conversation.card(card);
        let changed: Vec<&str> = self.changed_attributes.iter().map(|c| c.field.as_str()).collect();
        card.field("Conversation", "Changed", (!changed.is_empty()).then(|| changed.join(", ")));
    }

    /// Decodes a body in two scans: `flatten` would buffer the whole conversation first and lose
    /// the error positions.
    pub(super) fn from_body(body: &[u8]) -> serde_json::Result<Self> {
        let changed_attributes = wire::changed_attributes(body)?;
        Ok(Self {
            conversation: serde_json::from_slice(body)?,
            changed_attributes,
        })
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
    /// [`Message::private`](super::Message::private).
    pub is_private: bool,
}

impl Typing {
    /// Where, and who is typing.
    pub(super) fn card(&self, card: &mut Card) {
        self.conversation.summary(card);
        if let Some(user) = &self.user {
            user.card(card, "Typing");
        }
        card.field("Typing", "Private note", Some(self.is_private));
    }
}

/// An entry of `conversation.messages[]`: Chatwoot's raw message record, which differs from
/// [`Message`](super::Message) (integer `message_type`, integer `created_at` beside an ISO `updated_at`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ConversationMessage {
    /// The message id (the same as [`Message::id`](super::Message::id)).
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
