//! The records several liveDesk bodies embed: who sent something and what kind of sender that
//! is, who a message is from, attachments, references to accounts, inboxes and teams, changed
//! fields, and free-form objects.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::envelope::Card;
use crate::sources::lenient::{self, wire_enum};

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

    /// The sender as a group of a card (`Sender`, `Contact`, `Assignee`).
    pub(super) fn card(&self, card: &mut Card, group: &'static str) {
        let kind = match &self.type_ {
            Some(kind) => kind.as_str(),
            None => "contact",
        };
        card.field(group, "Id", Some(self.id))
            .field(group, "Kind", Some(kind))
            .field(group, "Identifier", self.identifier.as_ref())
            .personal(group, "Name", self.name.as_ref().or(self.available_name.as_ref()))
            .personal(group, "E-mail", self.email.as_ref())
            .personal(group, "Phone", self.phone_number.as_ref())
            .personal(group, "Avatar", self.avatar_url.as_ref().or(self.avatar.as_ref()));
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

impl Attachment {
    /// The attachment as a group of a message's card.
    pub(super) fn card(&self, card: &mut Card) {
        card.field("Attachment", "Attachment id", Some(self.id))
            .field("Attachment", "File type", self.file_type.as_ref())
            .field("Attachment", "Size (bytes)", self.file_size)
            .personal("Attachment", "Title", self.fallback_title.as_ref())
            .personal("Attachment", "File", self.data_url.as_ref());
    }
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

/// An optional id as text, the form [`KeyIds`](crate::envelope::KeyIds) holds.
pub(super) fn text(id: Option<i64>) -> Option<String> {
    id.map(|id| id.to_string())
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
}
