//! The `hookline` command: parses arguments and calls the library.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hookline::admin_client::{self, AdminClient};
use hookline::config::Config;
use hookline::server::{process, ServerBuilder};
use hookline::store::PostgresStore;
use hookline::{chatbrick, livedesk, send};
use serde_json::Value;

/// mimalloc: measurably less time in allocation and free than the system allocator on the
/// request path (docs/performance-log.md, "The request path").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Webhook receiver for ChatBrick and liveDesk: authenticates, stores durably, delivers.
#[derive(Debug, Parser)]
#[command(name = "hookline", version, about)]
struct Cli {
    /// Configuration file (TOML); environment variables override it.
    #[arg(long, short, global = true, env = "HOOKLINE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Validate the configuration and print what would run (secrets masked).
    CheckConfig,
    /// Exit 0 when the server of this configuration is ready, 1 otherwise (for HEALTHCHECK).
    Healthcheck,
    /// Bring the PostgreSQL schema (HOOKLINE_DATABASE_URL) up to date, then exit; replicas also
    /// do it when they start, one at a time.
    Migrate,
    /// Inspect stored events (talks to the running server's admin API).
    #[command(subcommand)]
    Events(EventsCommand),
    /// Replay deliveries (talks to the running server's admin API).
    #[command(subcommand)]
    Replay(ReplayCommand),
    /// Send a webhook the way a provider would, to test a deployment.
    #[command(subcommand)]
    Send(SendCommand),
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// List events, newest first.
    List(FilterArgs),
    /// Show one event with its deliveries and attempts.
    Show {
        /// hookline event id (`evt_…`).
        id: String,
    },
    /// List dead letters.
    Dead(FilterArgs),
}

#[derive(Debug, Subcommand)]
enum ReplayCommand {
    /// Replay one delivery by its id.
    Delivery {
        /// Delivery id.
        id: i64,
    },
    /// Replay every delivery of one event.
    Event {
        /// hookline event id (`evt_…`).
        id: String,
    },
    /// Replay every dead letter matching the filter.
    Dead(FilterArgs),
}

#[derive(Debug, Subcommand)]
enum SendCommand {
    /// Send a ChatBrick event signed like Svix does.
    Chatbrick {
        /// A documented event type (built-in example) or a JSON file.
        event: String,
        /// Target URL, e.g. https://hooks.example.com/webhooks/chatbrick.
        #[arg(long)]
        url: String,
        /// The endpoint's signing secret (`whsec_…`).
        #[arg(long, env = "HOOKLINE_SEND_SECRET")]
        secret: String,
    },
    /// Send a liveDesk event to a token URL, signed like Chatwoot when a secret is given.
    Livedesk {
        /// A documented event name (built-in example) or a JSON file.
        event: String,
        /// Target URL including the token, e.g. https://hooks.example.com/webhooks/livedesk/<token>.
        #[arg(long)]
        url: String,
        /// Chatwoot signing secret.
        #[arg(long, env = "HOOKLINE_SEND_LIVEDESK_SECRET")]
        secret: Option<String>,
    },
}

#[derive(Debug, Args)]
struct FilterArgs {
    /// chatbrick or livedesk.
    #[arg(long)]
    source: Option<String>,
    /// Exact event type.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// pending, delivered, dead, unrouted or undecodable (events list only).
    #[arg(long)]
    status: Option<String>,
    /// Route name (dead letters only).
    #[arg(long)]
    route: Option<String>,
    /// Received at or after (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Received before (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// At most this many.
    #[arg(long)]
    limit: Option<u32>,
}

impl FilterArgs {
    fn query(&self) -> Vec<(&'static str, String)> {
        let fields = [
            ("source", self.source.clone()),
            ("type", self.event_type.clone()),
            ("status", self.status.clone()),
            ("route", self.route.clone()),
            ("since", self.since.clone()),
            ("until", self.until.clone()),
            ("limit", self.limit.map(|l| l.to_string())),
        ];
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = match Config::load(cli.config.as_deref(), &env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("hookline: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match process::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hookline: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.command, config))
}

async fn run(command: Command, config: Config) -> ExitCode {
    match command {
        Command::Serve => serve(config).await,
        Command::CheckConfig => check_config(&config),
        Command::Healthcheck => {
            if admin_client::ready(&config).await {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Migrate => migrate(&config).await,
        Command::Events(command) => admin(&config, command_request(command)).await,
        Command::Replay(command) => admin(&config, replay_request(command)).await,
        Command::Send(command) => send_command(command).await,
    }
}

async fn serve(config: Config) -> ExitCode {
    process::init_logging(&config.log);
    warn_disabled_sources(&config);
    let server = match ServerBuilder::new(config).start().await {
        Ok(server) => server,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    wait_for_signal().await;
    tracing::info!("shutting down: no new requests; finishing in-flight work");
    server.shutdown();
    server.wait().await;
    ExitCode::SUCCESS
}

async fn migrate(config: &Config) -> ExitCode {
    let Some(url) = &config.store.url else {
        eprintln!(
            "hookline: migrate is for PostgreSQL (HOOKLINE_DATABASE_URL); \
             the SQLite inbox is brought up to date when serve opens it"
        );
        return ExitCode::from(2);
    };
    match PostgresStore::migrate(url).await {
        Ok(done) if done.from == done.to => {
            println!("{url}: schema at version {}, nothing to do", done.to)
        }
        Ok(done) => println!(
            "{url}: schema migrated from version {} to {}",
            done.from, done.to
        ),
        Err(e) => {
            eprintln!("hookline: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn warn_disabled_sources(config: &Config) {
    let Ok(reports) = config.sources.report(config.tolerance, &config.allowed_ips) else {
        return; // Starting fails with the reason.
    };
    for report in reports {
        if let Some(reason) = report.off {
            tracing::warn!("{} is off: {reason}", report.source);
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

fn check_config(config: &Config) -> ExitCode {
    let mut problems = Vec::new();
    let mut lines = vec![
        format!("listen            {}{}", config.listen, config.base_path),
        format!(
            "admin             {} (token: {})",
            config.admin.listen,
            if config.admin.token.is_some() {
                "set"
            } else {
                "none, loopback only"
            }
        ),
        match &config.store.url {
            Some(url) => format!("database          {url} (pool {})", config.store.pool_size),
            None => format!("data_dir          {}", config.data_dir.display()),
        },
        format!(
            "store             synchronous={:?} dedupe_window={} retention={}",
            config.store.synchronous,
            humantime::format_duration(config.store.dedupe_window),
            humantime::format_duration(config.store.retention)
        ),
    ];
    match config.sources.report(config.tolerance, &config.allowed_ips) {
        Ok(reports) => lines.extend(reports.into_iter().flat_map(|r| r.lines)),
        Err(e) => problems.push(e.to_string()),
    }
    for (name, handler) in &config.handlers {
        lines.push(format!("handler {name:<9} {}", describe_handler(handler)));
    }
    for route in &config.routes {
        lines.push(format!(
            "route {:<11} -> {} (source: {}, endpoints: {}, events: {}, conditions: {})",
            route.name(),
            route.handler,
            route.source.as_deref().unwrap_or("any"),
            list_or_any(&route.endpoints),
            list_or_any(&route.events),
            route.when.len()
        ));
    }
    println!("{}", lines.join("\n"));
    if problems.is_empty() {
        println!("configuration OK");
        ExitCode::SUCCESS
    } else {
        for problem in problems {
            eprintln!("error: {problem}");
        }
        ExitCode::from(2)
    }
}

fn describe_handler(handler: &hookline::config::HandlerConfig) -> String {
    use hookline::config::HandlerConfig;
    match handler {
        HandlerConfig::Log {
            include_personal,
            concurrency,
        } => {
            format!("log (personal data: {include_personal}, concurrency {concurrency})")
        }
        HandlerConfig::Forward {
            url,
            format,
            concurrency,
            ..
        } => {
            let shown = hookline::config::url_origin(url);
            format!("forward to {shown}/… ({format:?}, signed, concurrency {concurrency})")
        }
        HandlerConfig::File { path, .. } => format!("file {}", path.display()),
    }
}

fn list_or_any(items: &[String]) -> String {
    if items.is_empty() {
        "any".into()
    } else {
        items.join(",")
    }
}

/// An admin API call: method, path, query.
struct AdminRequest {
    post: bool,
    path: String,
    query: Vec<(&'static str, String)>,
}

fn command_request(command: EventsCommand) -> AdminRequest {
    match command {
        EventsCommand::List(filter) => AdminRequest {
            post: false,
            path: "/api/events".into(),
            query: filter.query(),
        },
        EventsCommand::Show { id } => AdminRequest {
            post: false,
            path: format!("/api/events/{id}"),
            query: Vec::new(),
        },
        EventsCommand::Dead(filter) => AdminRequest {
            post: false,
            path: "/api/dead-letters".into(),
            query: filter.query(),
        },
    }
}

fn replay_request(command: ReplayCommand) -> AdminRequest {
    match command {
        ReplayCommand::Delivery { id } => AdminRequest {
            post: true,
            path: format!("/api/deliveries/{id}/replay"),
            query: Vec::new(),
        },
        ReplayCommand::Event { id } => AdminRequest {
            post: true,
            path: format!("/api/events/{id}/replay"),
            query: Vec::new(),
        },
        ReplayCommand::Dead(filter) => AdminRequest {
            post: true,
            path: "/api/dead-letters/replay".into(),
            query: filter.query(),
        },
    }
}

async fn admin(config: &Config, request: AdminRequest) -> ExitCode {
    let client = match AdminClient::new(config) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("hookline: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = if request.post {
        client.post(&request.path, &request.query).await
    } else {
        client.get(&request.path, &request.query).await
    };
    match result {
        Ok(value) => {
            print_json(&value);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hookline: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

async fn send_command(command: SendCommand) -> ExitCode {
    let result = match command {
        SendCommand::Chatbrick { event, url, secret } => {
            match send::example_or_file(chatbrick::SOURCE, &event)
                .and_then(|body| send::chatbrick_headers(&secret, &body).map(|h| (body, h)))
            {
                Ok((body, headers)) => send::post(&url, body, headers).await,
                Err(e) => Err(e),
            }
        }
        SendCommand::Livedesk { event, url, secret } => {
            match send::example_or_file(livedesk::SOURCE, &event) {
                Ok(body) => {
                    let headers = send::livedesk_headers(secret.as_deref(), &body);
                    send::post(&url, body, headers).await
                }
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok((status, body)) => {
            println!("{status} {body}");
            if (200..300).contains(&status) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("hookline: {e}");
            ExitCode::FAILURE
        }
    }
}
