//! The bodies of the events about an account's contacts and inboxes rather than about one
//! conversation: contacts, inboxes, and a visitor opening the website widget.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::conversation::Conversation;
use super::parts::{text, AccountRef, ChangedAttribute, FreeForm, InboxRef, SenderType};
use super::wire;
use crate::envelope::{Card, KeyIds};
use crate::sources::lenient;

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
    #[serde(default, with = "wire::changes")]
    pub changed_attributes: Vec<ChangedAttribute>,
}

impl Contact {
    /// The contact as the card of a contact event shows it.
    pub(super) fn card(&self, card: &mut Card) {
        card.field("Contact", "Contact id", Some(self.id))
            .field("Contact", "Identifier", self.identifier.as_ref())
            .field("Contact", "Account id", self.account.as_ref().map(|a| a.id))
            .personal("Contact", "Name", self.name.as_ref())
            .personal("Contact", "E-mail", self.email.as_ref())
            .personal("Contact", "Phone", self.phone_number.as_ref())
            .personal("Contact", "Avatar", self.avatar.as_ref());
        let changed: Vec<&str> = self.changed_attributes.iter().map(|c| c.field.as_str()).collect();
        card.field("Contact", "Changed", (!changed.is_empty()).then(|| changed.join(", ")));
    }

    /// The ids of the contact and its account.
    pub(super) fn key_ids(&self) -> KeyIds {
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
    #[serde(default, with = "wire::changes")]
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

impl Inbox {
    /// The inbox's id and name.
    pub(super) fn card(&self, card: &mut Card) {
        card.field("Inbox", "Inbox id", self.id)
            .field("Inbox", "Name", self.name.as_ref());
    }
}

impl WebwidgetTriggered {
    /// The visitor, the widget's inbox and the current conversation.
    pub(super) fn card(&self, card: &mut Card) {
        if let Some(contact) = &self.contact {
            contact.card(card);
        }
        card.field("Widget", "Contact source id", self.source_id.as_ref())
            .field("Widget", "Inbox id", self.inbox.as_ref().map(|i| i.id));
        if let Some(conversation) = &self.current_conversation {
            conversation.summary(card);
        }
    }

    /// The ids of the contact, account and current conversation.
    pub(super) fn key_ids(&self) -> KeyIds {
        KeyIds {
            contact: text(self.contact.as_ref().map(|c| c.id)),
            account: text(self.account.as_ref().map(|a| a.id)),
            conversation: text(self.current_conversation.as_ref().map(|c| c.id)),
            ..KeyIds::default()
        }
    }
}
