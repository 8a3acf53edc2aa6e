//! ChatBrick's section of the configuration, `[chatbrick]`: the default endpoint's secrets and
//! any extra endpoints, each with its own.

use serde::{Deserialize, Serialize};

use super::verify::Verifiers;
use super::{Chatbrick, DEFAULT_ENDPOINT, SOURCE};
use crate::envelope::Source;
use crate::settings::{split_list, ConfigError, Env};
use crate::sources::{Endpoints, Provider, Shared};

/// ChatBrick endpoints and their signing secrets; off when none has a secret.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatbrickConfig {
    /// Secrets of the default endpoint `/webhooks/chatbrick` (several during a rotation).
    pub secrets: Vec<String>,
    /// Extra endpoints `/webhooks/chatbrick/<name>`, each with its own secrets.
    pub endpoints: Vec<ChatbrickEndpoint>,
}

/// One extra ChatBrick endpoint.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChatbrickEndpoint {
    /// Path segment after `/webhooks/chatbrick/`.
    pub name: String,
    /// Its signing secrets (`whsec_…`, or `whpk_…` for ed25519).
    pub secrets: Vec<String>,
}

// Hand-written `Debug`: printing a configuration (in a log line, a panic message, a test
// failure) must never show a secret.

impl std::fmt::Debug for ChatbrickConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatbrickConfig")
            .field("secrets", &format_args!("<{} set>", self.secrets.len()))
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl std::fmt::Debug for ChatbrickEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatbrickEndpoint")
            .field("name", &self.name)
            .field("secrets", &format_args!("<{} set>", self.secrets.len()))
            .finish()
    }
}

impl Provider for ChatbrickConfig {
    fn source(&self) -> Source {
        SOURCE
    }

    fn apply_env(&mut self, env: &Env<'_>) -> Result<(), ConfigError> {
        if let Some(v) = env.secret("HOOKLINE_CHATBRICK_SECRET")? {
            self.secrets = split_list(&v);
        }
        Ok(())
    }

    fn build(&self, shared: &Shared) -> Result<Box<dyn Endpoints>, ConfigError> {
        self.validate_endpoints()?;
        let mut verifiers = Verifiers::default();
        if !self.secrets.is_empty() {
            verifiers.add(DEFAULT_ENDPOINT, &self.secrets, shared.tolerance)?;
        }
        for endpoint in &self.endpoints {
            verifiers.add(&endpoint.name, &endpoint.secrets, shared.tolerance)?;
        }
        Ok(Box::new(Chatbrick {
            verifiers,
            // ChatBrick retries (Svix), so a request that finds every slot busy is refused at
            // once rather than held.
            admission: shared.admission(SOURCE, std::time::Duration::ZERO),
        }))
    }
}

impl ChatbrickConfig {
    /// Endpoint names are path segments: distinct, not `default`, each with secrets.
    fn validate_endpoints(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for endpoint in &self.endpoints {
            let name = endpoint.name.as_str();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid || name == DEFAULT_ENDPOINT {
                return Err(ConfigError::Invalid(format!(
                    "chatbrick endpoint name {name:?} must be non-empty, not \"default\", and use only letters, digits, '-' and '_'"
                )));
            }
            if !seen.insert(name) {
                return Err(ConfigError::Invalid(format!(
                    "chatbrick endpoint {name:?} is defined twice"
                )));
            }
            if endpoint.secrets.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "chatbrick endpoint {name:?} has no secrets"
                )));
            }
        }
        Ok(())
    }
}
