//! Configuration: a TOML file, then environment variables on top, then validation.
//!
//! The simple case needs no file at all: every setting an operator needs to get going has a
//! `HOOKLINE_*` variable, and every secret can also be read from a file (`HOOKLINE_*_FILE`) so
//! that Docker and Kubernetes secrets work without putting the value in the environment.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything hookline can be told, as read from the file and the environment.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
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
    /// Requests handled at once; beyond that hookline answers 503 with `Retry-After` (liveDesk
    /// requests first wait up to [`LivedeskConfig::overload_wait`] for a free slot).
    pub max_concurrent_requests: usize,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For`/`Forwarded` headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Per-source client allow-lists (CIDRs); a source without a list accepts any address.
    pub allowed_ips: AllowedIps,
    /// Logging.
    pub log: LogConfig,
    /// ChatBrick source; off when no secret is configured.
    pub chatbrick: ChatbrickConfig,
    /// liveDesk source; off when no token is configured.
    pub livedesk: LivedeskConfig,
    /// The inbox.
    pub store: StoreConfig,
    /// Retry policy for deliveries.
    pub delivery: DeliveryConfig,
    /// The admin listener (inspection, replay, metrics).
    pub admin: AdminConfig,
    /// Named handler instances that routes send to.
    pub handlers: BTreeMap<String, HandlerConfig>,
    /// Which events go to which handler. Empty means: every event to the `log` handler.
    pub routes: Vec<RouteConfig>,
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

/// ChatBrick endpoints and their signing secrets.
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

/// The liveDesk API-channel webhook.
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

/// SQLite durability trade-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// fsync on every commit: an acknowledged event survives power loss.
    Full,
    /// fsync at checkpoints only: survives a crash of hookline, not of the machine.
    Normal,
}

/// The inbox.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// SQLite `synchronous` setting.
    pub synchronous: Synchronous,
    /// How long event ids are remembered to drop the provider's duplicates.
    #[serde(with = "humantime_serde")]
    pub dedupe_window: Duration,
    /// How long event bodies are kept once their deliveries are finished.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How often the pruning task runs.
    #[serde(with = "humantime_serde")]
    pub prune_interval: Duration,
    /// Upper bound on the database size in bytes; past it intake answers 503 (0 = no bound).
    pub max_size: u64,
}

/// Retry policy for deliveries.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// Age of the event after which a failing delivery is dead-lettered.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// Delay after the first failure; doubles each time.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Cap on the delay between attempts.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Time a handler gets for one attempt.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Time running deliveries get to finish on shutdown.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

/// Optional per-source client address allow-lists.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllowedIps {
    /// Networks ChatBrick (Svix) sends from.
    pub chatbrick: Vec<ipnet::IpNet>,
    /// Networks liveDesk sends from.
    pub livedesk: Vec<ipnet::IpNet>,
}

/// The admin listener.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address; without a token it must be a loopback address.
    pub listen: SocketAddr,
    /// Bearer token required on every admin request.
    pub token: Option<String>,
}

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

/// Body of forwarded requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardFormat {
    /// The provider's original bytes.
    #[default]
    Raw,
    /// A CloudEvents 1.0 structured-mode JSON document.
    Cloudevents,
}

/// One route: which events go to which handler.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name shown in the inspector and metrics; defaults to the handler name.
    #[serde(default)]
    pub name: Option<String>,
    /// Name of a handler in `[handlers]` (or `log`).
    pub handler: String,
    /// `chatbrick` or `livedesk`; any when absent.
    #[serde(default)]
    pub source: Option<String>,
    /// Endpoint names (`default` for the unnamed one); any when empty.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Event type globs such as `contact.connection.*`; any when empty.
    #[serde(default)]
    pub events: Vec<String>,
    /// Body fields that must equal the given JSON values; dotted paths (`conversation.status`).
    #[serde(default)]
    pub when: BTreeMap<String, serde_json::Value>,
}

/// A configuration that cannot run, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for hookline.
    #[error("invalid configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong (never contains a secret: TOML errors quote only keys and positions).
        message: String,
    },
    /// An environment variable has a value that does not parse.
    #[error("invalid {var}: {message}")]
    Env {
        /// Variable name.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A semantic problem.
    #[error("{0}")]
    Invalid(String),
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
            max_concurrent_requests: 1024,
            trusted_proxies: Vec::new(),
            allowed_ips: AllowedIps::default(),
            log: LogConfig::default(),
            chatbrick: ChatbrickConfig::default(),
            livedesk: LivedeskConfig::default(),
            store: StoreConfig::default(),
            delivery: DeliveryConfig::default(),
            admin: AdminConfig::default(),
            handlers: BTreeMap::new(),
            routes: Vec::new(),
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

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            synchronous: Synchronous::Full,
            dedupe_window: Duration::from_secs(7 * 24 * 3600),
            retention: Duration::from_secs(7 * 24 * 3600),
            prune_interval: Duration::from_secs(600),
            max_size: 0,
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_attempts: 30,
            max_age: Duration::from_secs(72 * 3600),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3600),
            timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            token: None,
        }
    }
}

impl HandlerConfig {
    /// Deliveries this handler may run at once.
    pub fn concurrency(&self) -> usize {
        match self {
            HandlerConfig::Log { concurrency, .. }
            | HandlerConfig::Forward { concurrency, .. }
            | HandlerConfig::File { concurrency, .. } => (*concurrency).max(1),
        }
    }
}

/// What a secret looks like in `Debug` output: whether it is set, never its value.
fn masked(secret: &Option<String>) -> &'static str {
    if secret.is_some() {
        "<set>"
    } else {
        "<none>"
    }
}

/// A URL without its path, query and credentials (which may carry tokens), for `Debug` output.
pub fn url_origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<invalid url>".into(),
    }
}

// Hand-written `Debug` for everything that holds a secret, so that printing a configuration
// (in a log line, a panic message, a test failure) never shows one.

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

impl std::fmt::Debug for LivedeskConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivedeskConfig")
            .field("token", &masked(&self.token))
            .field("secret", &masked(&self.secret))
            .field("overload_wait", &self.overload_wait)
            .finish()
    }
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("token", &masked(&self.token))
            .finish()
    }
}

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
        config.apply_env(env)?;
        config.complete();
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })
    }

    /// Applies `HOOKLINE_*` variables over what the file said.
    fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        let vars = EnvReader { env };
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
        if let Some(v) = vars.secret("HOOKLINE_CHATBRICK_SECRET")? {
            self.chatbrick.secrets = split_list(&v);
        }
        if let Some(v) = vars.secret("HOOKLINE_LIVEDESK_TOKEN")? {
            self.livedesk.token = Some(v);
        }
        if let Some(v) = vars.secret("HOOKLINE_LIVEDESK_SECRET")? {
            self.livedesk.secret = Some(v);
        }
        if let Some(v) = vars.duration("HOOKLINE_LIVEDESK_OVERLOAD_WAIT")? {
            self.livedesk.overload_wait = v;
        }
        if let Some(v) = vars.plain("HOOKLINE_SYNCHRONOUS") {
            self.store.synchronous = parse_synchronous(&v)?;
        }
        if let Some(v) = vars.parsed("HOOKLINE_ADMIN_LISTEN")? {
            self.admin.listen = v;
        }
        if let Some(v) = vars.secret("HOOKLINE_ADMIN_TOKEN")? {
            self.admin.token = Some(v);
        }
        self.apply_env_forward(&vars)
    }

    /// `HOOKLINE_FORWARD_URL` + `HOOKLINE_FORWARD_SECRET`: a forward handler for every event.
    fn apply_env_forward(&mut self, vars: &EnvReader<'_>) -> Result<(), ConfigError> {
        let url = vars.plain("HOOKLINE_FORWARD_URL");
        let secret = vars.secret("HOOKLINE_FORWARD_SECRET")?;
        match (url, secret) {
            (None, None) => Ok(()),
            (Some(url), Some(secret)) => {
                self.handlers.insert(
                    ENV_FORWARD_HANDLER.into(),
                    HandlerConfig::Forward {
                        url,
                        secret,
                        format: ForwardFormat::Raw,
                        timeout: default_forward_timeout(),
                        retry_client_errors: false,
                        concurrency: default_concurrency(),
                    },
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

    /// Adds the built-in `log` handler, and the default route when none is configured.
    fn complete(&mut self) {
        self.handlers
            .entry(LOG_HANDLER.into())
            .or_insert(HandlerConfig::Log {
                include_personal: false,
                concurrency: default_concurrency(),
            });
        if self.routes.is_empty() {
            self.routes.push(RouteConfig::everything(LOG_HANDLER));
        }
        self.base_path = normalize_base_path(&self.base_path);
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
        if self.store.dedupe_window < Duration::from_secs(3600) {
            return invalid("store.dedupe_window must be at least 1h".into());
        }
        if self.admin.token.is_none() && !self.admin.listen.ip().is_loopback() {
            return invalid(format!(
                "admin.listen {} is not a loopback address: set HOOKLINE_ADMIN_TOKEN (admin.token) to serve the admin API there",
                self.admin.listen
            ));
        }
        self.validate_endpoints()?;
        self.validate_routes()
    }

    fn validate_endpoints(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for endpoint in &self.chatbrick.endpoints {
            let name = endpoint.name.as_str();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid || name == "default" {
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
                if source != "chatbrick" && source != "livedesk" {
                    return Err(ConfigError::Invalid(format!(
                        "route {:?}: source must be \"chatbrick\" or \"livedesk\", not {source:?}",
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

impl RouteConfig {
    /// A route that sends every event to `handler`.
    pub fn everything(handler: &str) -> RouteConfig {
        RouteConfig {
            name: None,
            handler: handler.into(),
            source: None,
            endpoints: Vec::new(),
            events: Vec::new(),
            when: BTreeMap::new(),
        }
    }

    /// The route's name: its own, or its handler's.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.handler)
    }
}

/// Reads `HOOKLINE_*` variables from a map, so tests need not touch the process environment.
struct EnvReader<'a> {
    env: &'a HashMap<String, String>,
}

impl EnvReader<'_> {
    /// A non-empty value.
    fn plain(&self, var: &str) -> Option<String> {
        self.env
            .get(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A secret: from `VAR`, or from the file that `VAR_FILE` names.
    fn secret(&self, var: &str) -> Result<Option<String>, ConfigError> {
        if let Some(v) = self.plain(var) {
            return Ok(Some(v));
        }
        let file_var = format!("{var}_FILE");
        let Some(path) = self.plain(&file_var) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Env {
            var: file_var.clone(),
            message: format!("cannot read {path}: {e}"),
        })?;
        Ok(Some(text.trim().to_owned()).filter(|v| !v.is_empty()))
    }

    /// A value parsed with `FromStr`; the error names the variable but not the value.
    fn parsed<T>(&self, var: &str) -> Result<Option<T>, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.plain(var)
            .map(|v| {
                v.parse().map_err(|e: T::Err| ConfigError::Env {
                    var: var.into(),
                    message: e.to_string(),
                })
            })
            .transpose()
    }

    /// A duration such as `5m` or `30s`.
    fn duration(&self, var: &str) -> Result<Option<Duration>, ConfigError> {
        self.plain(var)
            .map(|v| {
                humantime::parse_duration(&v).map_err(|e| ConfigError::Env {
                    var: var.into(),
                    message: e.to_string(),
                })
            })
            .transpose()
    }
}

/// Splits a list given as one string, separated by spaces and/or commas.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A list of CIDRs or single addresses (`10.0.0.0/8, 127.0.0.1`).
fn parse_networks(var: &str, value: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    split_list(value)
        .iter()
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ConfigError::Env {
                    var: var.into(),
                    message: format!("{item:?} is not a CIDR or IP address"),
                })
        })
        .collect()
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
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let config = Config::load(None, &HashMap::new()).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.routes.len(), 1);
        assert_eq!(config.routes[0].handler, "log");
        assert!(config.chatbrick.secrets.is_empty());
        assert_eq!(config.livedesk.overload_wait, Duration::from_secs(2));
    }

    #[test]
    fn environment_overrides_file_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookline.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1000\"\n[chatbrick]\nsecrets = [\"whsec_a\"]\n[livedesk]\noverload_wait = \"1s\"\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&path),
            &env(&[
                ("HOOKLINE_LISTEN", "127.0.0.1:2000"),
                ("HOOKLINE_CHATBRICK_SECRET", "whsec_b, whsec_c whsec_d"),
                ("HOOKLINE_LOG_FORMAT", "json"),
                ("HOOKLINE_BASE_PATH", "hooks/"),
                ("HOOKLINE_LIVEDESK_OVERLOAD_WAIT", "500ms"),
            ]),
        )
        .unwrap();
        assert_eq!(config.livedesk.overload_wait, Duration::from_millis(500));
        assert_eq!(config.listen.to_string(), "127.0.0.1:2000");
        assert_eq!(
            config.chatbrick.secrets,
            vec!["whsec_b", "whsec_c", "whsec_d"]
        );
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.base_path, "/hooks");
    }

    #[test]
    fn secrets_can_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t-token-value\n").unwrap();
        let config = Config::load(
            None,
            &env(&[("HOOKLINE_LIVEDESK_TOKEN_FILE", path.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(config.livedesk.token.as_deref(), Some("s3cr3t-token-value"));
    }

    #[test]
    fn forward_env_adds_handler_and_route() {
        let config = Config::load(
            None,
            &env(&[
                ("HOOKLINE_FORWARD_URL", "http://127.0.0.1:1/in"),
                (
                    "HOOKLINE_FORWARD_SECRET",
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                ),
            ]),
        )
        .unwrap();
        assert!(matches!(
            config.handlers.get("forward"),
            Some(HandlerConfig::Forward { .. })
        ));
        assert_eq!(config.routes.len(), 1);
        assert_eq!(config.routes[0].handler, "forward");
    }

    #[test]
    fn forward_url_without_secret_is_an_error() {
        let err = Config::load(None, &env(&[("HOOKLINE_FORWARD_URL", "http://x")])).unwrap_err();
        assert!(err.to_string().contains("HOOKLINE_FORWARD_SECRET"));
    }

    #[test]
    fn route_to_unknown_handler_is_rejected() {
        let mut config = Config::default();
        config.routes.push(RouteConfig::everything("nope"));
        config.complete();
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }

    #[test]
    fn public_admin_without_token_is_rejected() {
        let err =
            Config::load(None, &env(&[("HOOKLINE_ADMIN_LISTEN", "0.0.0.0:9090")])).unwrap_err();
        assert!(err.to_string().contains("HOOKLINE_ADMIN_TOKEN"));
    }

    #[test]
    fn invalid_env_value_names_the_variable() {
        let err = Config::load(None, &env(&[("HOOKLINE_LISTEN", "nonsense")])).unwrap_err();
        assert!(err.to_string().contains("HOOKLINE_LISTEN"));
    }

    #[test]
    fn unknown_file_keys_are_rejected_with_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = Config::load(Some(&path), &HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn trusted_proxies_from_env() {
        let config = Config::load(
            None,
            &env(&[("HOOKLINE_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1 ::1")]),
        )
        .unwrap();
        let shown: Vec<String> = config
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(shown, vec!["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
        let err = Config::load(None, &env(&[("HOOKLINE_TRUSTED_PROXIES", "nope")])).unwrap_err();
        assert!(err.to_string().contains("HOOKLINE_TRUSTED_PROXIES"));
    }

    #[test]
    fn example_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hookline.example.toml");
        let config = Config::load(Some(&path), &HashMap::new()).unwrap();
        assert_eq!(config.chatbrick.secrets.len(), 1);
        assert!(config.livedesk.token.is_some());
        assert_eq!(config.routes.len(), 1);
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let config = Config::load(
            None,
            &env(&[
                (
                    "HOOKLINE_CHATBRICK_SECRET",
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                ),
                ("HOOKLINE_LIVEDESK_TOKEN", "token-value-123"),
                ("HOOKLINE_LIVEDESK_SECRET", "chatwoot-value"),
                ("HOOKLINE_ADMIN_TOKEN", "admin-value"),
                (
                    "HOOKLINE_FORWARD_URL",
                    "https://u:pw@crm.example/in?key=query-value",
                ),
                (
                    "HOOKLINE_FORWARD_SECRET",
                    "whsec_dGhpcyBpcyB0aGUgZm9yd2FyZCBzZWNyZXQ=",
                ),
            ]),
        )
        .unwrap();
        let shown = format!("{config:?}");
        for secret in [
            "MfKQ9r8",
            "token-value",
            "chatwoot-value",
            "admin-value",
            "pw@",
            "query-value",
            "dGhpcyBp",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("https://crm.example"));
    }

    #[test]
    fn lists_split_on_commas_and_spaces() {
        assert_eq!(split_list(" a,b  c,,d "), vec!["a", "b", "c", "d"]);
    }
}
