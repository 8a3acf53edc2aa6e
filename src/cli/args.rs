//! The command line's definition: every command, its arguments, and in its help the environment
//! variables it reads. Completions and the man page are generated from these same definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Every `HOOKLINE_*` variable the configuration reads, with what it sets; README.md,
/// "Configuration", has the full table. A test checks that this list and the variables the
/// configuration code reads are the same.
pub(super) const CONFIG_VARS: &[(&str, &str)] = &[
    (
        "HOOKLINE_CONFIG",
        "the TOML configuration file (as --config)",
    ),
    ("HOOKLINE_LISTEN", "public listener (default 0.0.0.0:8080)"),
    (
        "HOOKLINE_BASE_PATH",
        "prefix of every public route, e.g. /hooks",
    ),
    (
        "HOOKLINE_DATA_DIR",
        "directory of the SQLite inbox (default ./data)",
    ),
    (
        "HOOKLINE_DATABASE_URL",
        "PostgreSQL that replicas share, postgres://…",
    ),
    (
        "HOOKLINE_DATABASE_POOL_SIZE",
        "connections to PostgreSQL per replica",
    ),
    (
        "HOOKLINE_CHATBRICK_SECRET",
        "ChatBrick signing secret(s), whsec_…",
    ),
    (
        "HOOKLINE_LIVEDESK_TOKEN",
        "the <token> of /webhooks/livedesk/<token>",
    ),
    (
        "HOOKLINE_LIVEDESK_SECRET",
        "Chatwoot signing secret (optional)",
    ),
    (
        "HOOKLINE_LIVEDESK_OVERLOAD_WAIT",
        "how long liveDesk waits for a slot (2s)",
    ),
    ("HOOKLINE_FORWARD_URL", "forward every event to this URL…"),
    ("HOOKLINE_FORWARD_SECRET", "…signed with this whsec_ secret"),
    (
        "HOOKLINE_ADMIN_LISTEN",
        "admin listener (default 127.0.0.1:9090)",
    ),
    ("HOOKLINE_ADMIN_TOKEN", "bearer token of the admin listener"),
    (
        "HOOKLINE_INSPECTOR_BASE_PATH",
        "the inspector's prefix behind a proxy, e.g. /ops",
    ),
    (
        "HOOKLINE_INSPECTOR_HIDE_PERSONAL",
        "true: the inspector hides names, text, contacts",
    ),
    (
        "HOOKLINE_INSPECTOR_SESSION_LIFETIME",
        "how long an inspector login lasts",
    ),
    (
        "HOOKLINE_TRUSTED_PROXIES",
        "proxies whose X-Forwarded-For is believed",
    ),
    ("HOOKLINE_LOG", "log filter (default info)"),
    ("HOOKLINE_LOG_FORMAT", "text or json"),
    (
        "HOOKLINE_BODY_LIMIT",
        "largest body in bytes (default 1048576)",
    ),
    (
        "HOOKLINE_TOLERANCE",
        "signed timestamps' allowed clock distance (5m)",
    ),
    (
        "HOOKLINE_SHUTDOWN_DRAIN",
        "on SIGTERM, answer this long while unready (0s)",
    ),
    (
        "HOOKLINE_MAX_CONCURRENT_REQUESTS",
        "requests at once before 503 (1024)",
    ),
    (
        "HOOKLINE_SYNCHRONOUS",
        "full or normal: when an event counts as durable",
    ),
];

/// Variables of the `send` command itself.
const SEND_VARS: &[(&str, &str)] = &[
    (
        "HOOKLINE_SEND_SECRET",
        "the ChatBrick secret to sign with (as --secret)",
    ),
    (
        "HOOKLINE_SEND_LIVEDESK_SECRET",
        "the Chatwoot secret to sign with (as --secret)",
    ),
];

/// The help text's list of the variables `names` (from [`CONFIG_VARS`] and [`SEND_VARS`]), and
/// where to read more.
fn env_help(names: &[&str]) -> String {
    let all = CONFIG_VARS.iter().chain(SEND_VARS);
    let lines: Vec<String> = names
        .iter()
        .filter_map(|name| all.clone().find(|(var, _)| var == name))
        .map(|(var, meaning)| format!("  {var:<34} {meaning}"))
        .collect();
    let secrets = if names
        .iter()
        .any(|n| n.ends_with("_SECRET") || n.ends_with("_TOKEN"))
    {
        "\nEvery secret can also be read from a file: <VARIABLE>_FILE=/run/secrets/….\n"
    } else {
        ""
    };
    format!(
        "Environment (over the configuration file):\n{}\n{secrets}\nMore: README.md \
         (\"Configuration\") and docs/deployment.md in hookline's source.",
        lines.join("\n")
    )
}

/// Every configuration variable: what `serve` and `check-config` read.
fn all_config_help() -> String {
    env_help(&CONFIG_VARS.iter().map(|(var, _)| *var).collect::<Vec<_>>())
}

/// What the commands that talk to the admin API read.
fn admin_help() -> String {
    env_help(&[
        "HOOKLINE_CONFIG",
        "HOOKLINE_ADMIN_LISTEN",
        "HOOKLINE_ADMIN_TOKEN",
    ])
}

/// What `send` reads.
fn send_help() -> String {
    env_help(&[
        "HOOKLINE_CONFIG",
        "HOOKLINE_SEND_SECRET",
        "HOOKLINE_SEND_LIVEDESK_SECRET",
        "HOOKLINE_CHATBRICK_SECRET",
        "HOOKLINE_LIVEDESK_TOKEN",
        "HOOKLINE_LIVEDESK_SECRET",
        "HOOKLINE_LISTEN",
        "HOOKLINE_BASE_PATH",
    ])
}

/// Webhook receiver for ChatBrick and liveDesk: authenticates, stores durably, delivers.
#[derive(Debug, Parser)]
#[command(
    name = "hookline",
    version,
    about,
    after_help = "Each command's --help lists the environment variables it reads. More: README.md \
                  and docs/deployment.md in hookline's source."
)]
pub(super) struct Cli {
    /// Configuration file (TOML); environment variables override it.
    #[arg(long, short, global = true, env = "HOOKLINE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands: those that act on a configuration, and those that need none (and so run even
/// where the configuration would not load).
#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Commands that load the configuration first.
    #[command(flatten)]
    Configured(Configured),
    /// Commands that need no configuration.
    #[command(flatten)]
    Standalone(Standalone),
}

/// Commands that load the configuration first.
#[derive(Debug, Subcommand)]
pub(super) enum Configured {
    /// Run the server.
    #[command(after_help = all_config_help())]
    Serve,
    /// Check the configuration exactly as `serve` would, without starting, and print what would
    /// run (secrets masked); exit 2 if `serve` would refuse it.
    #[command(after_help = all_config_help())]
    CheckConfig,
    /// Exit 0 when the server of this configuration is ready, 1 otherwise (for HEALTHCHECK).
    #[command(after_help = env_help(&["HOOKLINE_CONFIG", "HOOKLINE_LISTEN", "HOOKLINE_BASE_PATH"]))]
    Healthcheck,
    /// Inspect stored events (talks to the running server's admin API).
    #[command(subcommand)]
    Events(EventsCommand),
    /// Replay deliveries (talks to the running server's admin API).
    #[command(subcommand)]
    Replay(ReplayCommand),
    /// List or skip the keys of ordered routes that a dead letter holds back (talks to the
    /// running server's admin API).
    #[command(subcommand)]
    Blocked(BlockedCommand),
    /// Send a webhook the way a provider would, to test a deployment.
    #[command(subcommand)]
    Send(SendCommand),
    /// Copy the inbox into a file, consistently, while hookline runs (or not): every event
    /// acknowledged before the backup started is in it.
    #[command(after_help = env_help(&["HOOKLINE_CONFIG", "HOOKLINE_DATA_DIR"]))]
    Backup {
        /// The backup file to write (replaced if it exists).
        file: PathBuf,
    },
    /// Bring the PostgreSQL schema (HOOKLINE_DATABASE_URL) up to date, then exit; replicas also
    /// do it when they start, one at a time.
    #[command(after_help = env_help(&["HOOKLINE_CONFIG", "HOOKLINE_DATABASE_URL"]))]
    Migrate,
    /// Replace the inbox with a backup; refused while hookline runs on the data directory. The
    /// inbox it replaces is moved aside (hookline.db.before-restore-<time>), not deleted.
    #[command(after_help = env_help(&["HOOKLINE_CONFIG", "HOOKLINE_DATA_DIR"]))]
    Restore {
        /// The backup file (from `hookline backup`).
        file: PathBuf,
    },
}

/// Commands that need no configuration.
#[derive(Debug, Subcommand)]
pub(super) enum Standalone {
    /// Print a shell completion script, e.g. `hookline completions bash >
    /// /etc/bash_completion.d/hookline`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a directory.
    Man {
        /// Write hookline.1, hookline-serve.1, … into this directory instead.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

/// `hookline events …`.
#[derive(Debug, Subcommand)]
pub(super) enum EventsCommand {
    /// List events, newest first, as a table (`--json` for scripts).
    #[command(after_help = admin_help())]
    List(FilterArgs),
    /// Show one event with its body, deliveries and attempts (JSON).
    #[command(after_help = admin_help())]
    Show {
        /// hookline event id (`evt_…`).
        id: String,
    },
    /// List dead letters as a table (`--json` for scripts).
    #[command(after_help = admin_help())]
    Dead(FilterArgs),
}

/// `hookline replay …`.
#[derive(Debug, Subcommand)]
pub(super) enum ReplayCommand {
    /// Replay one delivery by its id.
    #[command(after_help = admin_help())]
    Delivery {
        /// Delivery id.
        id: i64,
    },
    /// Replay every delivery of one event.
    #[command(after_help = admin_help())]
    Event {
        /// hookline event id (`evt_…`).
        id: String,
    },
    /// Replay every dead letter matching the filter.
    #[command(after_help = admin_help())]
    Dead(FilterArgs),
}

/// `hookline blocked …`.
#[derive(Debug, Subcommand)]
pub(super) enum BlockedCommand {
    /// List the blocked keys, oldest first, with the dead letter that heads each and how many
    /// deliveries wait behind it, as a table (`--json` for scripts).
    #[command(after_help = admin_help())]
    List {
        /// Print the admin API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Let a blocked key go on without its dead letter: the next delivery of the key goes now,
    /// and the dead letter stays, replayable (out of order).
    #[command(after_help = admin_help())]
    Skip {
        /// The dead letter's delivery id (HEAD in `hookline blocked list`).
        delivery: i64,
    },
}

/// `hookline send …`.
#[derive(Debug, Subcommand)]
pub(super) enum SendCommand {
    /// Send a ChatBrick event signed like Svix does.
    #[command(after_help = send_help())]
    Chatbrick {
        /// A documented event type (built-in example) or a JSON file.
        event: String,
        /// Target URL [default: this configuration's own /webhooks/chatbrick, on loopback].
        #[arg(long)]
        url: Option<String>,
        /// The endpoint's signing secret (`whsec_…`) [default: the configured one of the
        /// endpoint the URL names].
        #[arg(long, env = "HOOKLINE_SEND_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
    /// Send a liveDesk event to a token URL, signed like Chatwoot when there is a secret.
    #[command(after_help = send_help())]
    Livedesk {
        /// A documented event name (built-in example) or a JSON file.
        event: String,
        /// Target URL including the token [default: this configuration's own
        /// /webhooks/livedesk/<token>, on loopback].
        #[arg(long)]
        url: Option<String>,
        /// Chatwoot signing secret [default: the configured one, if any].
        #[arg(long, env = "HOOKLINE_SEND_LIVEDESK_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
}

/// Which events or dead letters.
#[derive(Debug, Args)]
pub(super) struct FilterArgs {
    /// chatbrick or livedesk.
    #[arg(long)]
    pub source: Option<String>,
    /// Exact event type.
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// pending, delivered, dead, unrouted or undecodable (events list only).
    #[arg(long)]
    pub status: Option<String>,
    /// Route name (dead letters only).
    #[arg(long)]
    pub route: Option<String>,
    /// Received at or after (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Received before (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Print the admin API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl FilterArgs {
    /// The admin API's query parameters.
    pub fn query(&self) -> Vec<(&'static str, String)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The `"HOOKLINE_…"` string literals in a source file: the variables it reads.
    fn variables_in(source: &str) -> Vec<String> {
        source
            .match_indices("\"HOOKLINE_")
            .filter_map(|(at, _)| {
                let name = source[at + 1..].split('"').next()?;
                let plain = name.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                // `_FILE` variants are read for every secret (`Env::secret`).
                (plain && !name.ends_with("_FILE")).then(|| name.to_owned())
            })
            .collect()
    }

    #[test]
    fn the_help_lists_every_variable_the_configuration_reads() {
        let sources = [
            include_str!("../config.rs"),
            include_str!("../sources/chatbrick/config.rs"),
            include_str!("../sources/livedesk/config.rs"),
            include_str!("../store/mod.rs"),
            include_str!("../inspector/config.rs"),
        ];
        let read: std::collections::BTreeSet<String> =
            sources.iter().flat_map(|s| variables_in(s)).collect();
        let listed: std::collections::BTreeSet<String> = CONFIG_VARS
            .iter()
            .map(|(var, _)| var.to_string())
            .filter(|var| var != "HOOKLINE_CONFIG")
            .collect();
        assert_eq!(read, listed);
        let readme = include_str!("../../README.md");
        for (var, _) in CONFIG_VARS {
            assert!(
                readme.contains(&format!("`{var}`")),
                "{var} not in README.md"
            );
        }
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
