//! liveDesk's section of the configuration, `[livedesk]`: the URL token, the optional Chatwoot
//! signing secret, and how long a request may wait for a slot under overload.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::verify::{ChatwootVerifier, UrlToken};
use super::{Livedesk, SOURCE};
use crate::envelope::Source;
use crate::settings::{masked, ConfigError, Env, WeakToken};
use crate::sources::{Endpoints, Provider, Shared};

/// The liveDesk API-channel webhook; off when no token is configured.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LivedeskConfig {
    /// Secret path segment of `/webhooks/livedesk/<token>`.
    pub token: Option<String>,
    /// Chatwoot signing secret; when set, `X-Chatwoot-Signature` is required and checked.
    pub secret: Option<String>,
    /// How long a liveDesk request waits for a free request slot when all
    /// `max_concurrent_requests` are busy, before it gets 503. liveDesk never retries, so a 503
    /// loses the event at the sender, while it waits up to 5 s for an answer; ChatBrick, which
    /// retries, is refused at once. `0s` refuses liveDesk at once too.
    #[serde(with = "humantime_serde")]
    pub overload_wait: Duration,
}

impl Default for LivedeskConfig {
    fn default() -> Self {
        LivedeskConfig {
            token: None,
            secret: None,
            overload_wait: Duration::from_secs(2),
        }
    }
}

// Hand-written: printing a configuration must never show the token or the secret.
impl std::fmt::Debug for LivedeskConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivedeskConfig")
            .field("token", &masked(&self.token))
            .field("secret", &masked(&self.secret))
            .field("overload_wait", &self.overload_wait)
            .finish()
    }
}

impl Provider for LivedeskConfig {
    fn source(&self) -> Source {
        SOURCE
    }

    fn apply_env(&mut self, env: &Env<'_>) -> Result<(), ConfigError> {
        if let Some(v) = env.secret("HOOKLINE_LIVEDESK_TOKEN")? {
            self.token = Some(v);
        }
        if let Some(v) = env.secret("HOOKLINE_LIVEDESK_SECRET")? {
            self.secret = Some(v);
        }
        if let Some(v) = env.duration("HOOKLINE_LIVEDESK_OVERLOAD_WAIT")? {
            self.overload_wait = v;
        }
        Ok(())
    }

    fn secret_path(&self) -> Option<&'static str> {
        Some("/webhooks/livedesk/")
    }

    fn build(&self, shared: &Shared) -> Result<Box<dyn Endpoints>, ConfigError> {
        if self.token.is_none() && self.secret.is_some() {
            return Err(ConfigError::Invalid(
                "livedesk.secret is set but livedesk.token is not: the token is required".into(),
            ));
        }
        let token = self
            .token
            .clone()
            .map(UrlToken::new)
            .transpose()
            .map_err(|e| {
                ConfigError::Invalid(format!(
                    "HOOKLINE_LIVEDESK_TOKEN (livedesk.token) cannot be used: {e}"
                ))
            })?;
        if let Some(WeakToken::Placeholder) = self.secret.as_deref().and_then(WeakToken::check) {
            return Err(ConfigError::Invalid(format!(
                "HOOKLINE_LIVEDESK_SECRET (livedesk.secret) cannot be used: {}; set the \
                 channel's Chatwoot signing secret, or leave it empty if liveDesk does not sign",
                WeakToken::Placeholder
            )));
        }
        let chatwoot = self
            .secret
            .clone()
            .map(|secret| ChatwootVerifier::new(secret, shared.tolerance));
        Ok(Box::new(Livedesk {
            token,
            chatwoot,
            admission: shared.admission(SOURCE, self.overload_wait),
            overload_wait: self.overload_wait,
        }))
    }
}
