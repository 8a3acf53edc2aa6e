//! The webhook providers. Each folder owns everything about one provider: its configuration
//! section (parsing, environment variables, validation), its authentication, its typed events
//! and its HTTP routes. The rest of hookline sees a provider only through the `Provider` trait
//! and the [`Source`] its events carry; nothing below this module imports from it.
//!
//! Every provider folder has the same files:
//! - `mod.rs`: the [`Source`], the decoder, and the request handlers that hand authenticated,
//!   decoded events to `Intake`;
//! - `config.rs`: its configuration section, which implements `Provider`;
//! - `verify.rs`: its authentication state and checks;
//! - `event.rs`: its typed events.
//!
//! Adding a provider is adding its folder and one line to the `providers!` list below
//! (docs/architecture.md, "Adding a provider").

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::envelope::{Decoded, ProviderEvent, Source, Sources};
use crate::intake::{Admission, Intake};
use crate::settings::{ConfigError, Env};

/// Lenient deserializers for provider payloads, shared by every provider's event types.
mod lenient;

/// What a provider gives the rest of hookline, implemented by its configuration section's type.
pub(crate) trait Provider: fmt::Debug + Send + Sync {
    /// The source its events carry.
    fn source(&self) -> Source;

    /// Applies its `HOOKLINE_*` variables over what the configuration file said.
    fn apply_env(&mut self, env: &Env<'_>) -> Result<(), ConfigError>;

    /// Checks the section and builds what serves the provider's requests: exactly what
    /// `hookline serve` runs, so that `hookline check-config` can run it too.
    fn build(&self, shared: &Shared) -> Result<Box<dyn Endpoints>, ConfigError>;

    /// A path prefix whose next segment is a secret (liveDesk's URL token), masked in logs.
    fn secret_path(&self) -> Option<&'static str> {
        None
    }
}

/// A provider configured and ready to serve: what [`Provider::build`] returns. A provider that
/// is off (no secret or token configured) still serves its routes, answering 404.
pub(crate) trait Endpoints: Send {
    /// Why the provider is off, with the setting that turns it on; `None` when it is on.
    fn off(&self) -> Option<String>;

    /// What is on and where, for `check-config` and the start-up log: one line per endpoint,
    /// secrets masked.
    fn describe(&self) -> Vec<String>;

    /// The webhook URLs to give the provider, one per endpoint that is on, as paths relative to
    /// the public base path, secrets masked (none when off).
    fn webhook_urls(&self) -> Vec<WebhookUrl>;

    /// The provider's routes (paths relative to the public base path), serving through `intake`.
    fn routes(self: Box<Self>, intake: Arc<Intake>) -> axum::Router;
}

/// A provider's event type as read from the wire: what [`decode`] needs of it.
pub(crate) trait Wire: ProviderEvent + Sized {
    /// Why a body does not fit the type.
    type Error: fmt::Display;
    /// Decodes a body; unknown event types decode too (into an `Other` variant).
    fn decode(body: &[u8]) -> Result<Self, Self::Error>;
    /// The event type of a body that does not decode, when even that can be read.
    fn peek_type(body: &[u8]) -> Option<String>;
}

/// Decodes a body into `E`, or records why it does not fit with the type it could still read:
/// the decoder in every provider's [`crate::envelope::SourceSpec`].
pub(crate) fn decode<E: Wire>(body: &[u8]) -> Decoded {
    Decoded::from_result(E::decode(body), || E::peek_type(body))
}

/// The settings of the whole configuration that a provider's requests depend on.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    /// How far a signed timestamp may be from now, past or future.
    pub tolerance: Duration,
    /// Client networks this provider may send from (any when empty).
    pub allowed: Vec<ipnet::IpNet>,
}

impl Shared {
    /// How intake admits this provider's requests: its allow-list, and how long one may wait for
    /// a request slot when all are busy (zero: refused at once).
    pub(crate) fn admission(&self, source: Source, overload_wait: Duration) -> Admission {
        Admission::new(source, self.allowed.clone(), overload_wait)
    }
}

/// Lists the providers, once. Each line names a provider's module, which is also its section in
/// the configuration file (`[chatbrick]`), and the type of that section, which implements
/// [`Provider`]. The list declares the modules, defines [`SourcesConfig`] (every section, which
/// [`crate::config::Config`] embeds) and [`all`] (every source).
macro_rules! providers {
    ($( $(#[$doc:meta])* $module:ident: $section:ident, )*) => {
        $( $(#[$doc])* pub mod $module; )*

        /// Every provider's section of the configuration: `[chatbrick]`, `[livedesk]`, …
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        #[serde(default)]
        pub struct SourcesConfig {
            $(
                #[doc = concat!("The `[", stringify!($module), "]` section.")]
                #[serde(deserialize_with = "section::named")]
                pub $module: $module::$section,
            )*
        }

        impl SourcesConfig {
            /// Each provider's section, in the listed order.
            pub(crate) fn each(&self) -> Vec<&dyn Provider> {
                vec![$( &self.$module ),*]
            }

            /// Each provider's section, to change.
            pub(crate) fn each_mut(&mut self) -> Vec<&mut dyn Provider> {
                vec![$( &mut self.$module ),*]
            }
        }

        /// Every source this build serves.
        pub fn all() -> Sources {
            Sources::new(vec![$( $module::SOURCE ),*])
        }
    };
}

providers! {
    /// ChatBrick: LINE-based retail CRM whose webhooks Svix delivers, Standard-Webhooks signed.
    chatbrick: ChatbrickConfig,
    /// liveDesk: EngageLab's helpdesk on Chatwoot, authenticated by a URL token and optionally
    /// the Chatwoot signature.
    livedesk: LivedeskConfig,
}

/// Reading one provider's section, so that its errors say which section they are about (its
/// values are buffered by `serde(flatten)`, which loses TOML's positions).
mod section {
    use serde::de::{Deserialize, Deserializer, Error};

    use super::Provider;

    /// Deserializes a provider's section, prefixing errors with the section's name.
    pub(super) fn named<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Provider + Default,
    {
        T::deserialize(deserializer)
            .map_err(|e| D::Error::custom(format!("[{}]: {e}", T::default().source())))
    }
}

/// What one provider would serve, for `check-config` and the start-up log.
#[derive(Debug, Clone)]
pub struct SourceReport {
    /// The source.
    pub source: Source,
    /// Why it is off, with the setting that turns it on; `None` when it is on.
    pub off: Option<String>,
    /// What it serves, one line per endpoint, secrets masked.
    pub lines: Vec<String>,
    /// Where to point the provider, one URL per endpoint that is on.
    pub urls: Vec<WebhookUrl>,
}

/// A webhook URL to paste into a provider's settings: the first thing an operator needs once
/// hookline runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// Where it goes, e.g. `ChatBrick` or `ChatBrick endpoint "orders"`.
    pub paste_into: String,
    /// Its path below the public base path; a secret in it is masked, e.g.
    /// `/webhooks/livedesk/<token: fingerprint 3f2a, 48 characters>`.
    pub path: String,
}

impl WebhookUrl {
    /// The URL as the provider must be given it: on the public host name, which hookline does
    /// not know (the proxy in front of it does), under `base_path`.
    pub fn on_your_host(&self, base_path: &str) -> String {
        format!("https://<your host>{base_path}{}", self.path)
    }
}

impl SourcesConfig {
    /// What each built provider (from [`SourcesConfig::build`], in the same order) serves, for
    /// `check-config` and the start-up log.
    pub(crate) fn reports(&self, built: &[Box<dyn Endpoints>]) -> Vec<SourceReport> {
        self.each()
            .iter()
            .zip(built)
            .map(|(provider, endpoints)| SourceReport {
                source: provider.source(),
                off: endpoints.off(),
                lines: endpoints.describe(),
                urls: endpoints.webhook_urls(),
            })
            .collect()
    }

    /// The path prefixes after which a provider's URL carries a secret, masked in logs.
    pub(crate) fn secret_paths(&self) -> Vec<&'static str> {
        self.each().iter().filter_map(|p| p.secret_path()).collect()
    }

    /// Checks and builds every provider, with the allow-lists of `[allowed_ips]`.
    pub(crate) fn build(
        &self,
        tolerance: Duration,
        allowed_ips: &std::collections::BTreeMap<String, Vec<ipnet::IpNet>>,
    ) -> Result<Vec<Box<dyn Endpoints>>, ConfigError> {
        self.each()
            .into_iter()
            .map(|provider| {
                let shared = Shared {
                    tolerance,
                    allowed: allowed_ips
                        .get(provider.source().as_str())
                        .cloned()
                        .unwrap_or_default(),
                };
                provider.build(&shared)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;

    #[test]
    fn an_envelope_is_small_whatever_event_it_carries() {
        // It is moved through the request's futures, into an `Arc`, into store jobs: the
        // decoded event (up to ~2 KB) stays behind a pointer.
        assert!(std::mem::size_of::<livedesk::Event>() > 1024);
        assert!(
            std::mem::size_of::<Envelope>() <= 256,
            "{}",
            std::mem::size_of::<Envelope>()
        );
    }

    #[test]
    fn every_source_is_listed_once_with_its_section() {
        let config = SourcesConfig::default();
        let names: Vec<&str> = config.each().iter().map(|p| p.source().as_str()).collect();
        assert_eq!(names, all().names());
        assert_eq!(names, ["chatbrick", "livedesk"]);
    }
}
