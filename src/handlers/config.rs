//! The `[handlers.<name>]` sections of the configuration: one named instance of a built-in
//! handler each, with its settings.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::forward::{url_origin, ForwardFormat};

/// One handler instance.
#[derive(Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum HandlerConfig {
    /// Structured log line per event.
    Log {
        /// Also log names and message content.
        #[serde(default)]
        include_personal: bool,
        /// Deliveries at once through dispatch: replays, and deliveries that failed at intake
        /// (new events are logged at intake, see `Handler::runs_at_intake`).
        #[serde(default = "default_concurrency")]
        concurrency: usize,
    },
    /// HTTP POST to the brand's service, signed Standard-Webhooks style.
    Forward {
        /// Target URL.
        url: String,
        /// `whsec_…` secret the receiving service verifies with.
        secret: String,
        /// Body format.
        #[serde(default)]
        format: ForwardFormat,
        /// Per-request timeout.
        #[serde(default = "default_forward_timeout", with = "humantime_serde")]
        timeout: Duration,
        /// Treat 4xx other than 408/429 as retryable instead of dead-lettering at once.
        #[serde(default)]
        retry_client_errors: bool,
        /// Deliveries at once.
        #[serde(default = "default_concurrency")]
        concurrency: usize,
    },
    /// Append one JSON line per event to a file.
    File {
        /// The file.
        path: PathBuf,
        /// Deliveries at once.
        #[serde(default = "default_file_concurrency")]
        concurrency: usize,
    },
}

fn default_concurrency() -> usize {
    32
}

fn default_file_concurrency() -> usize {
    1
}

fn default_forward_timeout() -> Duration {
    Duration::from_secs(10)
}

impl HandlerConfig {
    /// The built-in `log` handler, as every configuration has it unless it says otherwise.
    pub fn log() -> HandlerConfig {
        HandlerConfig::Log {
            include_personal: false,
            concurrency: default_concurrency(),
        }
    }

    /// A `forward` handler with its defaults: the raw body, 10 s per request.
    pub fn forward(url: String, secret: String) -> HandlerConfig {
        HandlerConfig::Forward {
            url,
            secret,
            format: ForwardFormat::Raw,
            timeout: default_forward_timeout(),
            retry_client_errors: false,
            concurrency: default_concurrency(),
        }
    }

    /// Deliveries this handler may run at once.
    pub fn concurrency(&self) -> usize {
        match self {
            HandlerConfig::Log { concurrency, .. }
            | HandlerConfig::Forward { concurrency, .. }
            | HandlerConfig::File { concurrency, .. } => (*concurrency).max(1),
        }
    }
}

// Hand-written: printing a configuration must never show the forward secret or what the URL
// carries beyond its origin.
impl std::fmt::Debug for HandlerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandlerConfig::Log {
                include_personal,
                concurrency,
            } => f
                .debug_struct("Log")
                .field("include_personal", include_personal)
                .field("concurrency", concurrency)
                .finish(),
            HandlerConfig::Forward {
                url,
                format,
                timeout,
                retry_client_errors,
                concurrency,
                ..
            } => f
                .debug_struct("Forward")
                .field("url", &url_origin(url))
                .field("secret", &"<set>")
                .field("format", format)
                .field("timeout", timeout)
                .field("retry_client_errors", retry_client_errors)
                .field("concurrency", concurrency)
                .finish(),
            HandlerConfig::File { path, concurrency } => f
                .debug_struct("File")
                .field("path", path)
                .field("concurrency", concurrency)
                .finish(),
        }
    }
}
