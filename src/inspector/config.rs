//! The inspector's section of the configuration, `[admin.inspector]`: where its pages live,
//! whether they show personal data, and how long a login lasts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::settings::{ConfigError, Env};

/// How the inspector is served.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InspectorConfig {
    /// Prefix of the inspector's pages on the admin listener (e.g. `/hookline`), for a proxy
    /// that keeps the prefix it forwards; empty serves them at `/`. The JSON API and
    /// `/metrics` stay where they are.
    pub base_path: String,
    /// Hide personal data (names, message text, phone numbers, e-mail addresses, avatars,
    /// attachments) in event cards and in the raw bodies shown and downloaded.
    pub hide_personal: bool,
    /// How long a login lasts.
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
}

impl Default for InspectorConfig {
    fn default() -> Self {
        InspectorConfig {
            base_path: String::new(),
            hide_personal: false,
            session_lifetime: Duration::from_secs(12 * 3600),
        }
    }
}

impl InspectorConfig {
    /// Applies `HOOKLINE_INSPECTOR_*` variables over what the file said.
    pub(crate) fn apply_env(&mut self, vars: &Env<'_>) -> Result<(), ConfigError> {
        if let Some(v) = vars.plain("HOOKLINE_INSPECTOR_BASE_PATH") {
            self.base_path = v;
        }
        if let Some(v) = vars.parsed("HOOKLINE_INSPECTOR_HIDE_PERSONAL")? {
            self.hide_personal = v;
        }
        if let Some(v) = vars.duration("HOOKLINE_INSPECTOR_SESSION_LIFETIME")? {
            self.session_lifetime = v;
        }
        Ok(())
    }

    /// Checks what serde cannot.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.session_lifetime < Duration::from_secs(60) {
            return Err(ConfigError::Invalid(
                "admin.inspector.session_lifetime must be at least 1m".into(),
            ));
        }
        let unsafe_char = |c: char| !(c.is_ascii_alphanumeric() || "/-_.~".contains(c));
        if self.base_path.contains(unsafe_char) {
            return Err(ConfigError::Invalid(format!(
                "admin.inspector.base_path {:?} may hold only letters, digits and / - _ . ~",
                self.base_path
            )));
        }
        Ok(())
    }
}
