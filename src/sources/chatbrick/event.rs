//! Typed ChatBrick webhook events.
//!
//! Every ChatBrick body is `{"type": "<event type>", "data": {...}}`. [`Event::decode`] turns the
//! documented types into typed variants and keeps any other type raw in [`Event::Other`], because
//! ChatBrick marks all its events beta and adds types and fields without notice.
//!
//! The types are deliberately tolerant: unknown fields are ignored, identifiers are required (an
//! event about a contact without its id cannot be routed), and every other field is an `Option`
//! where both an absent key and `null` mean `None`. Empty-string URLs also mean `None`. Each such
//! quirk is read by a lenient deserializer that liveDesk's events share (`sources::lenient`).

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::envelope::{Card, CardField, KeyIds, PersonalData, ProviderEvent};
use crate::sources::lenient;

/// The keys of ChatBrick bodies that hold personal data: contacts' and staff members' names
/// and avatars, LINE display names and pictures (store names and logos go with them).
pub(crate) const PERSONAL_KEYS: &[&str] =
    &["name", "displayName", "avatar", "profilePictureUrl", "logo"];

/// Wire type of [`Event::ContactConnected`].
const CONNECTED: &str = "contact.connection.connected";
/// Wire type of [`Event::ContactConnectionChanged`].
const CHANGED: &str = "contact.connection.changed";
/// Wire type of [`Event::ContactDisconnected`].
const DISCONNECTED: &str = "contact.connection.disconnected";
/// Wire type of [`Event::StoreCreated`].
const STORE_CREATED: &str = "store.created";
/// Wire type of [`Event::StoreUpdated`].
const STORE_UPDATED: &str = "store.updated";
/// Wire type of [`Event::StoreDeactivated`].
const STORE_DEACTIVATED: &str = "store.deactivated";
/// Wire type of [`Event::AccountCreated`].
const ACCOUNT_CREATED: &str = "account.created";
/// Wire type of [`Event::AccountDeactivated`].
const ACCOUNT_DEACTIVATED: &str = "account.deactivated";

/// One ChatBrick webhook event, as sent in the body of a Svix delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `contact.connection.connected`: a customer binds to a store or staff member for the first time.
    ContactConnected(ConnectionEvent),
    /// `contact.connection.changed`: a bound customer switches store or staff member; ChatBrick
    /// sends only the new binding, not the previous one.
    ContactConnectionChanged(ConnectionEvent),
    /// `contact.connection.disconnected`: the customer unbinds.
    ContactDisconnected(DisconnectionEvent),
    /// `store.created`.
    StoreCreated(StoreEvent),
    /// `store.updated`.
    StoreUpdated(StoreEvent),
    /// `store.deactivated`.
    StoreDeactivated(StoreEvent),
    /// `account.created`: a staff account was created.
    AccountCreated(AccountEvent),
    /// `account.deactivated`: a staff account was deactivated.
    AccountDeactivated(AccountEvent),
    /// Any other `type`: kept raw so that new ChatBrick events are routed, never rejected.
    Other {
        /// The wire `type` string.
        event_type: String,
        /// The body's `data` as sent (`Null` when the body has none).
        data: serde_json::Value,
    },
}

/// Why a body could not be decoded into an [`Event`]; the message names the event type and carries
/// serde's reason with the line and column in the body.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

/// The outer shape every ChatBrick body shares; `data` is kept unparsed until `type` is known.
#[derive(Deserialize)]
struct Wire<'a> {
    /// The event type that selects how `data` is read.
    #[serde(rename = "type")]
    event_type: String,
    /// The raw `data` text, borrowed from the body.
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// Only the `type` of a body, for [`peek_type`].
#[derive(Deserialize)]
struct TypeOnly {
    /// The event type.
    #[serde(rename = "type")]
    event_type: String,
}

/// A JSON object read as `T`. serde's derived structs also accept an array of their fields in
/// order, so without this `["store.created", {…}]` would decode as an event, a body no sender
/// sends and whose `type` a route condition could not see.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

/// Hands a JSON object, and nothing else, to `T`'s own deserializer.
struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// Only the `data` of a body, re-read on failure so the error's line and column are the body's.
#[derive(Deserialize)]
struct DataOnly<T> {
    /// The typed data.
    data: T,
}

impl Event {
    /// Decodes a raw body.
    ///
    /// Fails only when the body is not a JSON object with a string `type`, or when a documented
    /// type's `data` does not fit the types here. Unknown types become [`Event::Other`].
    pub fn decode(body: &[u8]) -> Result<Event, DecodeError> {
        let Object::<Wire<'_>>(wire) = serde_json::from_slice(body).map_err(|err| {
            DecodeError(format!(
                "not a ChatBrick event (a JSON object with a string `type`): {err}"
            ))
        })?;
        let raw = wire.data.map_or("null", RawValue::get);
        let t = wire.event_type.as_str();
        Ok(match t {
            CONNECTED => Event::ContactConnected(decode_data(body, t, raw)?),
            CHANGED => Event::ContactConnectionChanged(decode_data(body, t, raw)?),
            DISCONNECTED => Event::ContactDisconnected(decode_data(body, t, raw)?),
            STORE_CREATED => Event::StoreCreated(decode_data(body, t, raw)?),
            STORE_UPDATED => Event::StoreUpdated(decode_data(body, t, raw)?),
            STORE_DEACTIVATED => Event::StoreDeactivated(decode_data(body, t, raw)?),
            ACCOUNT_CREATED => Event::AccountCreated(decode_data(body, t, raw)?),
            ACCOUNT_DEACTIVATED => Event::AccountDeactivated(decode_data(body, t, raw)?),
            _ => Event::Other {
                data: decode_data(body, t, raw)?,
                event_type: wire.event_type,
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
    /// The wire type string, e.g. `"store.created"`; for [`Event::Other`] its `event_type`.
    fn event_type(&self) -> &str {
        match self {
            Event::ContactConnected(_) => CONNECTED,
            Event::ContactConnectionChanged(_) => CHANGED,
            Event::ContactDisconnected(_) => DISCONNECTED,
            Event::StoreCreated(_) => STORE_CREATED,
            Event::StoreUpdated(_) => STORE_UPDATED,
            Event::StoreDeactivated(_) => STORE_DEACTIVATED,
            Event::AccountCreated(_) => ACCOUNT_CREATED,
            Event::AccountDeactivated(_) => ACCOUNT_DEACTIVATED,
            Event::Other { event_type, .. } => event_type,
        }
    }

    /// The contact, store and account ids this event is about.
    ///
    /// Connections give the contact, the connected store and the connected staff account; account
    /// events give the account and its primary store; [`Event::Other`] gives none.
    fn key_ids(&self) -> KeyIds {
        match self {
            Event::ContactConnected(e) | Event::ContactConnectionChanged(e) => KeyIds {
                contact: Some(e.contact.id.clone()),
                store: e.connected_store.as_ref().map(|s| s.id.clone()),
                account: e.connected_staff.as_ref().map(|a| a.id.clone()),
                ..KeyIds::default()
            },
            Event::ContactDisconnected(e) => KeyIds {
                contact: Some(e.contact.id.clone()),
                ..KeyIds::default()
            },
            Event::StoreCreated(e) | Event::StoreUpdated(e) | Event::StoreDeactivated(e) => {
                KeyIds {
                    store: Some(e.store.id.clone()),
                    ..KeyIds::default()
                }
            }
            Event::AccountCreated(e) | Event::AccountDeactivated(e) => KeyIds {
                store: e.account.store_id.clone(),
                account: Some(e.account.id.clone()),
                ..KeyIds::default()
            },
            Event::Other { .. } => KeyIds::default(),
        }
    }

    /// The name this event is about: the contact's, a staff account's public `displayName` (never
    /// its internal `name`), or the store's. ChatBrick events carry no message text.
    fn personal(&self) -> PersonalData {
        let name = match self {
            Event::ContactConnected(e) | Event::ContactConnectionChanged(e) => &e.contact.name,
            Event::ContactDisconnected(e) => &e.contact.name,
            Event::StoreCreated(e) | Event::StoreUpdated(e) | Event::StoreDeactivated(e) => {
                &e.store.name
            }
            Event::AccountCreated(e) | Event::AccountDeactivated(e) => &e.account.display_name,
            Event::Other { .. } => &None,
        };
        PersonalData {
            name: name.clone(),
            content: None,
        }
    }

    /// The contact with their LINE users, the store and the staff member the event is about.
    fn card(&self) -> Vec<CardField> {
        let mut card = Card::default();
        match self {
            Event::ContactConnected(e) | Event::ContactConnectionChanged(e) => {
                e.contact.card(&mut card);
                e.line_users.iter().for_each(|u| u.card(&mut card));
                if let Some(store) = &e.connected_store {
                    store.card(&mut card);
                }
                if let Some(staff) = &e.connected_staff {
                    staff.card(&mut card);
                }
                e.timestamps.card(&mut card);
            }
            Event::ContactDisconnected(e) => {
                e.contact.card(&mut card);
                e.line_users.iter().for_each(|u| u.card(&mut card));
                e.timestamps.card(&mut card);
            }
            Event::StoreCreated(e) | Event::StoreUpdated(e) | Event::StoreDeactivated(e) => {
                e.store.card(&mut card);
                e.timestamps.card(&mut card);
            }
            Event::AccountCreated(e) | Event::AccountDeactivated(e) => {
                e.account.card(&mut card);
                e.timestamps.card(&mut card);
            }
            Event::Other { .. } => {}
        }
        card.fields()
    }
}

impl Contact {
    fn card(&self, card: &mut Card) {
        card.field("Contact", "Contact id", Some(&self.id))
            .personal("Contact", "Name", self.name.as_ref())
            .personal("Contact", "Avatar", self.avatar.as_ref());
    }
}

impl LineUser {
    fn card(&self, card: &mut Card) {
        card.field("LINE user", "LINE user id", Some(&self.line_uid))
            .field("LINE user", "LINE provider id", Some(&self.line_provider_id))
            .field("LINE user", "ChatBrick id", Some(&self.id))
            .personal("LINE user", "Display name", self.name.as_ref())
            .personal("LINE user", "Picture", self.profile_picture_url.as_ref());
    }
}

impl Store {
    fn card(&self, card: &mut Card) {
        card.field("Store", "Store id", Some(&self.id))
            .field("Store", "Name", self.name.as_ref())
            .field("Store", "External id", self.external_id.as_ref());
    }
}

impl Account {
    fn card(&self, card: &mut Card) {
        card.field("Staff", "Account id", Some(&self.id))
            .field("Staff", "Store id", self.store_id.as_ref())
            .field("Staff", "Employee id", self.employee_id.as_ref())
            .personal("Staff", "Display name", self.display_name.as_ref())
            .personal("Staff", "Internal name", self.name.as_ref())
            .personal("Staff", "Avatar", self.avatar.as_ref());
    }
}

impl Timestamps {
    fn card(&self, card: &mut Card) {
        let at = |t: &Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
        card.field("When", "Connected", at(&self.connected_at))
            .field("When", "Changed", at(&self.changed_at))
            .field("When", "Disconnected", at(&self.disconnected_at))
            .field("When", "First connected", at(&self.init_connected_at))
            .field("When", "Created", at(&self.created_at))
            .field("When", "Updated", at(&self.updated_at))
            .field("When", "Deactivated", at(&self.deactivated_at));
    }
}

/// The `type` string of a body even when full decoding fails, so undecodable bodies can still be
/// routed. `None` when the body is not a JSON object with a string `type`.
pub fn peek_type(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Object<TypeOnly>>(body)
        .ok()
        .map(|Object(t)| t.event_type)
}

/// Reads `data` as `T`; on failure re-reads the whole body so that the error's line and column
/// refer to the body rather than to the `data` substring.
fn decode_data<T: DeserializeOwned>(
    body: &[u8],
    event_type: &str,
    raw: &str,
) -> Result<T, DecodeError> {
    serde_json::from_str(raw).or_else(|_| {
        serde_json::from_slice::<DataOnly<T>>(body)
            .map(|d| d.data)
            .map_err(|err| DecodeError(format!("invalid `data` for {event_type}: {err}")))
    })
}

/// `data` of `contact.connection.connected` and `contact.connection.changed`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionEvent {
    /// The customer whose binding this is.
    pub contact: Contact,
    /// The customer's LINE identities (usually exactly one); empty when absent.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub line_users: Vec<LineUser>,
    /// The store the customer is now bound to; `None` "in rare cases" when bound only to staff.
    #[serde(default)]
    pub connected_store: Option<Store>,
    /// The staff member the customer is now bound to; `None` when bound only to a store.
    #[serde(default)]
    pub connected_staff: Option<Account>,
    /// When it happened (`connectedAt` or `changedAt`, plus `initConnectedAt`).
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub timestamps: Timestamps,
    /// The same instants as sent in epoch milliseconds.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub timestamps_ms: TimestampsMs,
}

/// `data` of `contact.connection.disconnected`; no store or staff is sent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DisconnectionEvent {
    /// The customer who unbound.
    pub contact: Contact,
    /// The customer's LINE identities; empty when absent.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub line_users: Vec<LineUser>,
    /// When it happened (`disconnectedAt`, `initConnectedAt`).
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub timestamps: Timestamps,
    /// The same instants as sent in epoch milliseconds.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub timestamps_ms: TimestampsMs,
}

/// `data` of `store.created`, `store.updated` and `store.deactivated`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreEvent {
    /// The store in its new state.
    pub store: Store,
    /// When it happened (`createdAt`, `updatedAt` or `deactivatedAt`).
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub timestamps: Timestamps,
    /// The same instants as sent in epoch milliseconds.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub timestamps_ms: TimestampsMs,
}

/// `data` of `account.created` and `account.deactivated`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountEvent {
    /// The staff account in its new state.
    pub account: Account,
    /// When it happened (`createdAt` or `deactivatedAt`).
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub timestamps: Timestamps,
    /// The same instants as sent in epoch milliseconds.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub timestamps_ms: TimestampsMs,
}

/// A brand's customer as ChatBrick knows them, across LINE identities.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// ChatBrick's contact id: the key to the customer in ChatBrick's API.
    pub id: String,
    /// The contact's name as ChatBrick shows it (personal data).
    #[serde(default)]
    pub name: Option<String>,
    /// Avatar URL; not meant to be hot-linked, download it if it must be shown.
    #[serde(default, deserialize_with = "lenient::non_empty")]
    pub avatar: Option<String>,
}

/// One LINE identity of a contact (a LINE user id is per LINE provider).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineUser {
    /// ChatBrick's id for this LINE identity.
    pub id: String,
    /// LINE display name, which may differ from the contact's name (personal data).
    #[serde(default)]
    pub name: Option<String>,
    /// LINE user id (`U` + 32 hex), what the LINE Messaging API addresses.
    pub line_uid: String,
    /// The LINE provider that `line_uid` belongs to: digits, sent as a string (a number is accepted).
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub line_provider_id: String,
    /// LINE profile picture URL; may already be expired when received.
    #[serde(default, deserialize_with = "lenient::non_empty")]
    pub profile_picture_url: Option<String>,
}

/// A brand's store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Store {
    /// ChatBrick's store id.
    pub id: String,
    /// The store's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Logo URL; not meant to be hot-linked.
    #[serde(default, deserialize_with = "lenient::non_empty")]
    pub logo: Option<String>,
    /// The brand-configured id that maps the store to the brand's own systems.
    #[serde(default)]
    pub external_id: Option<String>,
}

/// A staff account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// ChatBrick's account id.
    pub id: String,
    /// The account's primary store; `None` for accounts without one, e.g. brand managers.
    #[serde(default)]
    pub store_id: Option<String>,
    /// Internal name: never show it to customers, use `display_name` instead.
    #[serde(default)]
    pub name: Option<String>,
    /// The public name customers see.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The brand's employee number for this staff member.
    #[serde(default)]
    pub employee_id: Option<String>,
    /// Avatar URL; not meant to be hot-linked.
    #[serde(default, deserialize_with = "lenient::non_empty")]
    pub avatar: Option<String>,
}

/// The `timestamps` object: ISO 8601 instants. One struct for every event type, each key
/// optional, so that keys ChatBrick adds or drops never break decoding.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Timestamps {
    /// `contact.connection.connected`: when the binding was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<DateTime<Utc>>,
    /// `contact.connection.changed`: when the binding switched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<DateTime<Utc>>,
    /// `contact.connection.disconnected`: when the customer unbound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnected_at: Option<DateTime<Utc>>,
    /// Connection events: when the customer first bound, ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_connected_at: Option<DateTime<Utc>>,
    /// `store.created` / `account.created`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// `store.updated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// `store.deactivated` / `account.deactivated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<DateTime<Utc>>,
}

/// The `timestampsMs` object: the same keys as [`Timestamps`] in epoch milliseconds, accepted as a
/// JSON integer or a numeric string (examples send integers, the field reference says strings) and
/// serialized back as integers.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TimestampsMs {
    /// See [`Timestamps::connected_at`].
    #[serde(with = "lenient::epoch_ms", skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<DateTime<Utc>>,
    /// See [`Timestamps::changed_at`].
    #[serde(with = "lenient::epoch_ms", skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<DateTime<Utc>>,
    /// See [`Timestamps::disconnected_at`].
    #[serde(with = "lenient::epoch_ms", skip_serializing_if = "Option::is_none")]
    pub disconnected_at: Option<DateTime<Utc>>,
    /// See [`Timestamps::init_connected_at`].
    #[serde(with = "lenient::epoch_ms", skip_serializing_if = "Option::is_none")]
    pub init_connected_at: Option<DateTime<Utc>>,
    /// See [`Timestamps::created_at`].
    #[serde(with = "lenient::epoch_ms", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// See [`Timestamps::updated_at`].
    #[serde(with = "lenient::epoch_ms", skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// See [`Timestamps::deactivated_at`].
    #[serde(with = "lenient::epoch_ms", skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_object_reads_as_default() {
        let body = br#"{"type":"store.updated","data":{"store":{"id":"s"},"timestamps":null,"timestampsMs":null,"extra":1}}"#;
        let Event::StoreUpdated(e) = Event::decode(body).unwrap() else {
            panic!("wrong variant");
        };
        assert_eq!(e.timestamps, Timestamps::default());
        assert_eq!(e.timestamps_ms, TimestampsMs::default());
    }
}
