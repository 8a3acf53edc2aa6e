//! A message: the body of the message events, which embeds its conversation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::conversation::Conversation;
use super::parts::{text, AccountRef, Attachment, FreeForm, InboxRef, MessageType, Sender};
use crate::envelope::{Card, KeyIds, PersonalData};
use crate::sources::lenient;

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
    pub(super) fn key_ids(&self) -> KeyIds {
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
    pub(super) fn personal(&self) -> PersonalData {
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

    /// Its conversation and contact, its sender, the message and its attachments.
    pub(super) fn card(&self, card: &mut Card) {
        if let Some(conversation) = &self.conversation {
            conversation.summary(card);
            if let Some(contact) = conversation.contact() {
                contact.card(card, "Contact");
            }
        }
        if let Some(sender) = &self.sender {
            sender.card(card, "Sender");
        }
        card.field("Message", "Message id", Some(self.id))
            .field("Message", "Type", Some(self.message_type.as_str()))
            .field("Message", "Private note", Some(self.private))
            .field("Message", "Content type", self.content_type.as_ref())
            .personal("Message", "Content", self.content.as_ref());
        for attachment in &self.attachments {
            attachment.card(card);
        }
    }
}
