//! Configuration: a TOML file, then environment variables on top, then validation.
//!
//! The simple case needs no file at all: every setting an operator needs to get going has a
//! `HOOKLINE_*` variable, and every secret can also be read from a file (`HOOKLINE_*_FILE`) so
//! that Docker and Kubernetes secrets work without putting the value in the environment.
//!
//! This module layers the sections; each is owned by the module it configures: the providers'
//! sections by `sources/`, `[store]` by the store, `[delivery]` and `[[routes]]` by dispatch, the
//! forward handler's format by the handler.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::dispatch::retry::DeliveryConfig;
pub use crate::dispatch::routes::RouteConfig;
pub use crate::handlers::config::HandlerConfig;
pub use crate::handlers::forward::{url_origin, ForwardFormat};
pub use crate::inspector::InspectorConfig;
pub use crate::settings::{split_list, ConfigError};
pub use crate::sources::chatbrick::{ChatbrickConfig, ChatbrickEndpoint};
pub use crate::sources::livedesk::LivedeskConfig;
pub use crate::sources::SourcesConfig;
pub use crate::store::{StoreConfig, Synchronous};

use crate::settings::{masked, parse_networks, Env, WeakToken};

/// Everything hookline can be told, as read from the file and the environment.
///
/// Unknown keys are errors (a misspelt setting must not be silently ignored); they are caught
/// after parsing rather than by serde's `deny_unknown_fields`, which cannot be combined with the
/// flattened provider sections.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// Address of the public listener that providers post to.
    pub listen: SocketAddr,
    /// Prefix under which all public routes live, for proxies that do not strip it (e.g. `/hooks`).
    pub base_path: String,
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub body_limit: usize,
    /// How far a signed timestamp may be from now, past or future, before it counts as a replay.
    #[serde(with = "humantime_serde")]
    pub tolerance: Duration,
    /// Time allowed to receive a request's headers before the connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Time allowed for a whole request (body included) before the client gets 408.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// On SIGTERM, how long hookline goes on answering while `/readyz` already says 503, before
    /// it stops accepting: the time a load balancer's health check needs to take it out, so
    /// that no request meets a closed port (docs/high-availability.md). 0 stops at once.
    #[serde(with = "humantime_serde")]
    pub shutdown_drain: Duration,
    /// Requests handled at once; beyond that hookline answers 503 with `Retry-After` (liveDesk
    /// requests first wait up to `livedesk.overload_wait` for a free slot).
    pub max_concurrent_requests: usize,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For`/`Forwarded` headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Per-source client allow-lists (CIDRs), by source name (`[allowed_ips] chatbrick = […]`);
    /// a source without a list accepts any address.
    pub allowed_ips: BTreeMap<String, Vec<ipnet::IpNet>>,
    /// Logging.
    pub log: LogConfig,
    /// The providers' sections: `[chatbrick]`, `[livedesk]`, … (each off until its secret or
    /// token is configured).
    #[serde(flatten)]
    pub sources: SourcesConfig,
    /// The inbox.
    pub store: StoreConfig,
    /// Retry policy for deliveries.
    pub delivery: DeliveryConfig,
    /// The admin listener (inspection, replay, metrics).
    pub admin: AdminConfig,
    /// Named handler instances that routes send to.
    pub handlers: BTreeMap<String, HandlerConfig>,
    /// Which events go to which handler. When the file lists none, every event goes to the `log`
    /// handler (and, with `HOOKLINE_FORWARD_URL`, to `forward` as well).
    pub routes: Vec<RouteConfig>,
    /// Whether `routes` holds the implicit route of every event to `log`, added because the file
    /// lists no routes: routes given in code replace it (see `ServerBuilder::route`).
    #[serde(skip)]
    pub(crate) implicit_log_route: bool,
    /// Top-level keys that are no setting, reported as errors by [`Config::from_file`].
    #[serde(flatten, skip_serializing)]
    unknown: BTreeMap<String, toml::Value>,
}

/// How and how much hookline logs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `hookline=debug,tower_http=info`.
    pub filter: String,
    /// `text` for a terminal, `json` for log shippers.
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The admin listener.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address; without a token it must be a loopback address.
    pub listen: SocketAddr,
    /// Bearer token required on every admin request.
    pub token: Option<String>,
    /// The web inspector on this listener (`[admin.inspector]`).
    pub inspector: InspectorConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            base_path: String::new(),
            data_dir: PathBuf::from("./data"),
            body_limit: 1024 * 1024,
            tolerance: Duration::from_secs(300),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            shutdown_drain: Duration::ZERO,
            max_concurrent_requests: 1024,
            trusted_proxies: Vec::new(),
            allowed_ips: BTreeMap::new(),
            log: LogConfig::default(),
            sources: SourcesConfig::default(),
            store: StoreConfig::default(),
            delivery: DeliveryConfig::default(),
            admin: AdminConfig::default(),
            handlers: BTreeMap::new(),
            routes: Vec::new(),
            implicit_log_route: false,
            unknown: BTreeMap::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            token: None,
            inspector: InspectorConfig::default(),
        }
    }
}

// Hand-written `Debug` for what holds a secret: printing a configuration (in a log line, a panic
// message, a test failure) must never show one.

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("token", &masked(&self.token))
            .field("inspector", &self.inspector)
            .finish()
    }
}

/// Name of the built-in handler that every configuration has.
pub const LOG_HANDLER: &str = "log";
/// Name of the handler and route that `HOOKLINE_FORWARD_URL` adds.
pub const ENV_FORWARD_HANDLER: &str = "forward";

impl Config {
    /// Reads the file (if any), applies the environment, fills in implied handlers and routes, and
    /// validates the result.
    pub fn load(path: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        let file_routes = !config.routes.is_empty();
        config.apply_env(env)?;
        config.complete(file_routes);
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        match config.unknown.keys().next() {
            Some(key) => Err(ConfigError::Parse {
                path: path.to_owned(),
                message: format!("unknown key `{key}`{}", line_of_key(&text, key)),
            }),
            None => Ok(config),
        }
    }

    /// Applies `HOOKLINE_*` variables over what the file said.
    fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        let vars = Env::new(env);
        if let Some(v) = vars.parsed("HOOKLINE_LISTEN")? {
            self.listen = v;
        }
        if let Some(v) = vars.plain("HOOKLINE_BASE_PATH") {
            self.base_path = v;
        }
        if let Some(v) = vars.plain("HOOKLINE_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = vars.parsed("HOOKLINE_BODY_LIMIT")? {
            self.body_limit = v;
        }
        if let Some(v) = vars.duration("HOOKLINE_TOLERANCE")? {
            self.tolerance = v;
        }
        if let Some(v) = vars.duration("HOOKLINE_SHUTDOWN_DRAIN")? {
            self.shutdown_drain = v;
        }
        if let Some(v) = vars.parsed("HOOKLINE_MAX_CONCURRENT_REQUESTS")? {
            self.max_concurrent_requests = v;
        }
        if let Some(v) = vars.plain("HOOKLINE_TRUSTED_PROXIES") {
            self.trusted_proxies = parse_networks("HOOKLINE_TRUSTED_PROXIES", &v)?;
        }
        if let Some(v) = vars.plain("HOOKLINE_LOG") {
            self.log.filter = v;
        }
        if let Some(v) = vars.plain("HOOKLINE_LOG_FORMAT") {
            self.log.format = parse_log_format(&v)?;
        }
        for provider in self.sources.each_mut() {
            provider.apply_env(&vars)?;
        }
        if let Some(v) = vars.plain("HOOKLINE_SYNCHRONOUS") {
            self.store.synchronous = parse_synchronous(&v)?;
        }
        if let Some(v) = vars.secret("HOOKLINE_DATABASE_URL")? {
            let url = v.parse().map_err(|message| ConfigError::Env {
                var: "HOOKLINE_DATABASE_URL".into(),
                message,
            })?;
            self.store.url = Some(url);
        }
        if let Some(v) = vars.parsed("HOOKLINE_DATABASE_POOL_SIZE")? {
            self.store.pool_size = v;
        }
        if let Some(v) = vars.parsed("HOOKLINE_ADMIN_LISTEN")? {
            self.admin.listen = v;
        }
        if let Some(v) = vars.secret("HOOKLINE_ADMIN_TOKEN")? {
            self.admin.token = Some(v);
        }
        self.admin.inspector.apply_env(&vars)?;
        self.apply_env_forward(&vars)
    }

    /// `HOOKLINE_FORWARD_URL` + `HOOKLINE_FORWARD_SECRET`: a forward handler for every event.
    fn apply_env_forward(&mut self, vars: &Env<'_>) -> Result<(), ConfigError> {
        let url = vars.plain("HOOKLINE_FORWARD_URL");
        let secret = vars.secret("HOOKLINE_FORWARD_SECRET")?;
        match (url, secret) {
            (None, None) => Ok(()),
            (Some(url), Some(secret)) => {
                self.handlers.insert(
                    ENV_FORWARD_HANDLER.into(),
                    HandlerConfig::forward(url, secret),
                );
                self.routes
                    .push(RouteConfig::everything(ENV_FORWARD_HANDLER));
                Ok(())
            }
            _ => Err(ConfigError::Invalid(
                "HOOKLINE_FORWARD_URL and HOOKLINE_FORWARD_SECRET must be set together".into(),
            )),
        }
    }

    /// Adds the built-in `log` handler, and, when the file lists no routes, the route of every
    /// event to it: in front of `HOOKLINE_FORWARD_URL`'s route, if there is one, so that the simple
    /// case forwards *and* logs. Routes in the file decide in full: no implicit route then.
    fn complete(&mut self, file_routes: bool) {
        self.handlers
            .entry(LOG_HANDLER.into())
            .or_insert_with(HandlerConfig::log);
        if !file_routes {
            self.routes.insert(0, RouteConfig::everything(LOG_HANDLER));
            self.implicit_log_route = true;
        }
        self.base_path = normalize_base_path(&self.base_path);
        self.admin.inspector.base_path = normalize_base_path(&self.admin.inspector.base_path);
    }

    /// Checks what serde cannot: references, ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.body_limit == 0 {
            return invalid("body_limit must be greater than 0".into());
        }
        if self.max_concurrent_requests == 0 {
            return invalid("max_concurrent_requests must be greater than 0".into());
        }
        if self.delivery.max_attempts == 0 {
            return invalid("delivery.max_attempts must be at least 1".into());
        }
        if self.store.pool_size == 0 {
            return invalid("store.pool_size must be at least 1".into());
        }
        if self.store.dedupe_window < Duration::from_secs(3600) {
            return invalid("store.dedupe_window must be at least 1h".into());
        }
        if let Some(problem) = self.admin.token.as_deref().and_then(WeakToken::check) {
            return invalid(format!(
                "HOOKLINE_ADMIN_TOKEN (admin.token) cannot be used: {problem}: use a long random \
                 value, e.g. `openssl rand -hex 32`"
            ));
        }
        if self.admin.token.is_none() && !self.admin.listen.ip().is_loopback() {
            return invalid(format!(
                "admin.listen {} is not a loopback address: set HOOKLINE_ADMIN_TOKEN (admin.token) to serve the admin API there",
                self.admin.listen
            ));
        }
        self.admin.inspector.validate()?;
        self.validate_sources()?;
        self.validate_routes()
    }

    /// Checks that `[allowed_ips]` names only sources that exist. (The providers' own sections
    /// are checked when they are built, by `serve` and `check-config` alike.)
    fn validate_sources(&self) -> Result<(), ConfigError> {
        let known = crate::sources::all();
        match self.allowed_ips.keys().find(|n| known.get(n).is_none()) {
            Some(name) => Err(ConfigError::Invalid(format!(
                "allowed_ips.{name}: no such source (expected one of {})",
                known.names().join(", ")
            ))),
            None => Ok(()),
        }
    }

    fn validate_routes(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for route in &self.routes {
            if !self.handlers.contains_key(&route.handler) {
                return Err(ConfigError::Invalid(format!(
                    "route {:?} refers to handler {:?}, which is not defined under [handlers]",
                    route.name(),
                    route.handler
                )));
            }
            if let Some(source) = &route.source {
                let known = crate::sources::all();
                if known.get(source).is_none() {
                    return Err(ConfigError::Invalid(format!(
                        "route {:?}: source must be one of {}, not {source:?}",
                        route.name(),
                        known
                            .names()
                            .iter()
                            .map(|n| format!("{n:?}"))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    )));
                }
            }
            if let Some(order_by) = route.order_by.as_deref() {
                if order_by.split('.').any(str::is_empty) {
                    return Err(ConfigError::Invalid(format!(
                        "route {:?}: order_by must be \"conversation\", \"contact\" or a dotted \
                         body path such as \"data.contact.id\", not {order_by:?}",
                        route.name()
                    )));
                }
            }
            if !names.insert(route.name()) {
                return Err(ConfigError::Invalid(format!(
                    "route name {:?} is used twice: give each route a distinct name",
                    route.name()
                )));
            }
        }
        Ok(())
    }
}

/// The secrets `hookline.example.toml` ships with (the Standard Webhooks test vectors and a demo
/// liveDesk token): public, so anyone can sign requests with them. Serving them beyond loopback
/// is what [`Config::warnings`] warns about.
const DEMO_SECRETS: &[&str] = &[
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    "demo-livedesk-token-not-for-production",
];

impl Config {
    /// What runs, but should not: the settings that hold one of the example file's public demo
    /// secrets, when the public listener is not on loopback. `serve` logs these and
    /// `check-config` prints them.
    pub fn warnings(&self) -> Vec<String> {
        let chatbrick = &self.sources.chatbrick;
        let mut demo = Vec::new();
        let endpoint_secrets = chatbrick.endpoints.iter().flat_map(|e| &e.secrets);
        if chatbrick
            .secrets
            .iter()
            .chain(endpoint_secrets)
            .any(|s| DEMO_SECRETS.contains(&s.trim()))
        {
            demo.push("the ChatBrick secret (HOOKLINE_CHATBRICK_SECRET)");
        }
        if let Some(token) = &self.sources.livedesk.token {
            if DEMO_SECRETS.contains(&token.as_str()) {
                demo.push("the liveDesk token (HOOKLINE_LIVEDESK_TOKEN)");
            }
        }
        if demo.is_empty() || self.listen.ip().is_loopback() {
            return Vec::new();
        }
        vec![format!(
            "DEMO SECRETS IN USE on {}: {} {} of hookline.example.toml, so anyone can send \
             hookline events that pass as authentic. Fine for a first try on your machine; \
             before anything else can reach this port, set your own (README, \"Pointing the \
             providers at hookline\").",
            self.listen,
            demo.join(" and "),
            if demo.len() == 1 {
                "is the public demo value"
            } else {
                "are the public demo values"
            }
        )]
    }
}

/// `" (line N)"` for the line where a top-level key or table `key` is set, or nothing.
fn line_of_key(text: &str, key: &str) -> String {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let table = line.trim_start_matches('[').trim_start();
            line.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
                || (line.starts_with('[') && table.starts_with(key))
        })
        .map(|n| format!(" (line {})", n + 1))
        .unwrap_or_default()
}

fn parse_log_format(value: &str) -> Result<LogFormat, ConfigError> {
    match value {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(ConfigError::Env {
            var: "HOOKLINE_LOG_FORMAT".into(),
            message: format!("expected text or json, got {other:?}"),
        }),
    }
}

fn parse_synchronous(value: &str) -> Result<Synchronous, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "full" => Ok(Synchronous::Full),
        "normal" => Ok(Synchronous::Normal),
        other => Err(ConfigError::Env {
            var: "HOOKLINE_SYNCHRONOUS".into(),
            message: format!("expected full or normal, got {other:?}"),
        }),
    }
}

/// `hooks/` → `/hooks`; `/` and empty → empty.
fn normalize_base_path(path: &str) -> String {
    let trimmed = path.trim().trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

#[cfg(test)]
mod tests;
