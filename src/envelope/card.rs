//! An event's card in the inspector: the few fields a person looks for first, which each
//! provider picks from its own types.

use std::fmt;

/// One line of an event's card in the inspector: a field a person looks for first (who, which
/// store, what was said), in a group (`Contact`, `Message`, …). Providers build their cards from
/// their own types, so the inspector shows them without knowing any provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardField {
    /// The group it belongs to, e.g. `Contact`.
    pub group: &'static str,
    /// What it is, e.g. `Name`.
    pub label: &'static str,
    /// The value as text.
    pub value: String,
    /// Personal data (a name, message text, phone, e-mail, avatar): hidden when the inspector
    /// hides personal data.
    pub personal: bool,
}

/// Builds a card: the fields that have a value, in the order added.
#[derive(Debug, Default)]
pub struct Card(Vec<CardField>);

impl Card {
    /// Adds a field that is no personal data, when it has a value.
    pub fn field(
        &mut self,
        group: &'static str,
        label: &'static str,
        value: Option<impl fmt::Display>,
    ) -> &mut Card {
        self.add(group, label, value, false)
    }

    /// Adds a field that is personal data, when it has a value.
    pub fn personal(
        &mut self,
        group: &'static str,
        label: &'static str,
        value: Option<impl fmt::Display>,
    ) -> &mut Card {
        self.add(group, label, value, true)
    }

    fn add(
        &mut self,
        group: &'static str,
        label: &'static str,
        value: Option<impl fmt::Display>,
        personal: bool,
    ) -> &mut Card {
        if let Some(value) = value {
            let value = value.to_string();
            self.0.push(CardField {
                group,
                label,
                value,
                personal,
            });
        }
        self
    }

    /// The fields.
    pub fn fields(self) -> Vec<CardField> {
        self.0
    }
}
