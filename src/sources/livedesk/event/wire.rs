//! liveDesk's wire shapes that do not map field for field onto its event types: the `event` key
//! that says which type a body is, `changed_attributes`, and free-form objects sent as `[]`.
//!
//! The generic quirks (times, names-or-codes, empty strings, `null` lists) are read by the
//! lenient deserializers both providers share (`crate::sources::lenient`); what is here is
//! liveDesk's alone.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::parts::{ChangedAttribute, FreeForm};

/// The `event` string of a body in one pass that builds nothing but the name: `Ok(None)` when
/// the body is a JSON object without a string `event`, an error when it is not a JSON object.
pub(super) fn event_name(body: &[u8]) -> serde_json::Result<Option<String>> {
    let EventName(name) = serde_json::from_slice(body)?;
    Ok(name)
}

/// The `changed_attributes` of a body, every other key skipped unbuilt: one of the two scans of a
/// `conversation_updated` body (see `ConversationUpdate`).
pub(super) fn changed_attributes(body: &[u8]) -> serde_json::Result<Vec<ChangedAttribute>> {
    let ChangesOnly { changed_attributes } = serde_json::from_slice(body)?;
    Ok(changed_attributes)
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

/// The `changed_attributes` of a body, every other key skipped.
#[derive(Deserialize)]
struct ChangesOnly {
    /// See [`super::ConversationUpdate::changed_attributes`].
    #[serde(default, with = "changes")]
    changed_attributes: Vec<ChangedAttribute>,
}

/// `changed_attributes` on the wire: a list of one-key objects
/// `{"<field>": {"previous_value": …, "current_value": …}}`, or null; also accepted, a single
/// object of such keys. Read as a flat list of [`ChangedAttribute`], written back in the list shape.
pub(super) mod changes {
    use super::{ChangedAttribute, Value};
    use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
    use serde::ser::{SerializeMap, Serializer};
    use serde::{Deserialize, Serialize};
    use std::fmt;

    /// Reads the wire shape.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<ChangedAttribute>, D::Error> {
        d.deserialize_any(ListVisitor)
    }

    /// Writes the wire shape.
    pub(crate) fn serialize<S: Serializer>(
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

/// An object as is; `[]` (how the sender writes an empty one in places) and `null` as empty;
/// anything else kept verbatim rather than failing the whole event.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::livedesk::event::ConversationUpdate;

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
}
