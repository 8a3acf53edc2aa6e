//! ChatBrick's authentication state: one Standard Webhooks [`Verifier`] per endpoint, built from
//! that endpoint's secrets (several during a rotation).

use std::collections::HashMap;
use std::time::Duration;

use crate::settings::ConfigError;
use crate::signature::{Key, Verifier};

/// The verifiers of ChatBrick's endpoints, by endpoint name (`default` for
/// `/webhooks/chatbrick`). Empty when ChatBrick is off.
#[derive(Debug, Default)]
pub(crate) struct Verifiers {
    /// Verifier per endpoint name.
    by_endpoint: HashMap<String, Verifier>,
    /// Each endpoint with its masked keys, in configuration order, for `describe`.
    described: Vec<(String, Vec<String>)>,
}

impl Verifiers {
    /// Adds an endpoint with its secrets; an invalid one is named by the endpoint's label and
    /// position, never by its value.
    pub fn add(
        &mut self,
        endpoint: &str,
        secrets: &[String],
        tolerance: Duration,
    ) -> Result<(), ConfigError> {
        let keys = parse_keys(&label(endpoint), &setting(endpoint), secrets)?;
        let masked = keys.iter().map(Key::masked).collect();
        self.described.push((endpoint.to_owned(), masked));
        self.by_endpoint
            .insert(endpoint.to_owned(), Verifier::new(keys, tolerance));
        Ok(())
    }

    /// The verifier of an endpoint, if it is configured.
    pub fn get(&self, endpoint: &str) -> Option<&Verifier> {
        self.by_endpoint.get(endpoint)
    }

    /// Whether an endpoint is configured.
    pub fn contains(&self, endpoint: &str) -> bool {
        self.by_endpoint.contains_key(endpoint)
    }

    /// The configured endpoints' names, in configuration order.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        self.described.iter().map(|(endpoint, _)| endpoint.as_str())
    }

    /// Whether no endpoint is configured (ChatBrick is off).
    pub fn is_empty(&self) -> bool {
        self.by_endpoint.is_empty()
    }

    /// One line per endpoint: its label and masked keys.
    pub fn describe(&self) -> Vec<String> {
        if self.described.is_empty() {
            return vec![format!("{:<17} off (no secret)", "chatbrick")];
        }
        self.described
            .iter()
            .map(|(endpoint, keys)| {
                let label = label(endpoint);
                format!("{label:<17} on, {} key(s): {}", keys.len(), keys.join(", "))
            })
            .collect()
    }
}

/// How an endpoint is named in messages: `chatbrick`, or `chatbrick/<name>` for an extra one.
fn label(endpoint: &str) -> String {
    if endpoint == super::DEFAULT_ENDPOINT {
        "chatbrick".to_owned()
    } else {
        format!("chatbrick/{endpoint}")
    }
}

/// Where an endpoint's secrets are set, for error messages.
fn setting(endpoint: &str) -> String {
    if endpoint == super::DEFAULT_ENDPOINT {
        "HOOKLINE_CHATBRICK_SECRET, or `secrets` in [chatbrick]".to_owned()
    } else {
        format!("`secrets` of the [[chatbrick.endpoints]] named {endpoint:?}")
    }
}

/// Parses a list of secrets; when one is invalid, names the endpoint, the setting and the
/// secret's position, never its value.
pub fn parse_keys(label: &str, setting: &str, secrets: &[String]) -> Result<Vec<Key>, ConfigError> {
    secrets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<Key>().map_err(|e| {
                ConfigError::Invalid(format!(
                    "{label}: secret #{} is invalid ({setting}): {e}",
                    i + 1
                ))
            })
        })
        .collect()
}
