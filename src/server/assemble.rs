//! From a configuration to the parts of a server, checked. [`ServerBuilder::start`] builds them
//! and [`ServerBuilder::check`] (`hookline check-config`) runs the same code, opening nothing it
//! keeps: so `check-config` refuses exactly what `serve` would refuse.
//!
//! [`ServerBuilder::start`]: super::ServerBuilder::start
//! [`ServerBuilder::check`]: super::ServerBuilder::check

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Config, ConfigError, HandlerConfig, RouteConfig, ENV_FORWARD_HANDLER};
use crate::dispatch::HandlerEntry;
use crate::handlers::file::FileHandler;
use crate::handlers::forward::ForwardHandler;
use crate::handlers::log::LogHandler;
use crate::handlers::Handler;
use crate::sources::{Endpoints, SourceReport};

/// Whether the parts are built to run, or only checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Build everything: `serve`.
    Start,
    /// Build what has no effect outside this process, check the rest: `check-config`.
    Check,
}

/// What a configuration runs, as `serve` builds it: `check-config` prints it, `serve` logs its
/// warnings and webhook URLs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The configuration, with the routes given in code merged in.
    pub config: Config,
    /// Each source: on or off, what it serves and where.
    pub sources: Vec<SourceReport>,
    /// What will run but should not, or not like this (no source on, demo secrets in public).
    pub warnings: Vec<String>,
}

impl Plan {
    /// The start-up lines, on their own target (`hookline::startup`) so that they can be enabled
    /// alone: where hookline listens (tests read the bound ports from this line), where it
    /// stores, which sources are on, then each webhook URL to give the providers.
    pub(super) fn log_started(&self, public: SocketAddr, admin: SocketAddr, store: &str) {
        let on: Vec<&str> = self
            .sources
            .iter()
            .filter(|s| s.off.is_none())
            .map(|s| s.source.as_str())
            .collect();
        let sources = if on.is_empty() {
            "none".to_owned()
        } else {
            on.join(",")
        };
        tracing::info!(target: "hookline::startup", listen = %public, admin = %admin, store, sources, "hookline started");
        for url in self.sources.iter().flat_map(|s| &s.urls) {
            tracing::info!(
                target: "hookline::startup",
                url = %url.on_your_host(&self.config.base_path),
                "webhook URL for {}", url.paste_into
            );
        }
    }
}

/// The checked parts of a server.
pub(super) struct Parts {
    /// What runs.
    pub plan: Plan,
    /// Every provider, built.
    pub providers: Vec<Box<dyn Endpoints>>,
    /// The configured handlers and those given in code (in [`Mode::Check`], without the `file`
    /// handlers, which are only checked).
    pub handlers: Vec<HandlerEntry>,
}

/// Merges the routes given in code, builds the providers and the handlers, and collects the
/// warnings.
pub(super) fn assemble(
    mut config: Config,
    custom: Vec<HandlerEntry>,
    routes: Vec<RouteConfig>,
    mode: Mode,
) -> Result<Parts, ConfigError> {
    merge_code_routes(&mut config, routes, &custom)?;
    let providers = config
        .sources
        .build(config.tolerance, &config.allowed_ips)?;
    let mut handlers = configured_handlers(&config, mode)?;
    handlers.extend(custom);
    let sources = config.sources.reports(&providers);
    let warnings = warnings(&config, &sources);
    Ok(Parts {
        plan: Plan {
            config,
            sources,
            warnings,
        },
        providers,
        handlers,
    })
}

/// The demo-secret warning, and every source that is off; first and loudest, that none is on.
fn warnings(config: &Config, sources: &[SourceReport]) -> Vec<String> {
    let mut warnings = Vec::new();
    if sources.iter().all(|s| s.off.is_some()) {
        warnings.push(
            "NO SOURCE IS CONFIGURED: hookline will accept no webhook (every webhook URL answers \
             404). Set HOOKLINE_CHATBRICK_SECRET and/or HOOKLINE_LIVEDESK_TOKEN (README, \
             \"Pointing the providers at hookline\")."
                .to_owned(),
        );
    }
    warnings.extend(config.warnings());
    warnings.extend(sources.iter().filter_map(|report| {
        let reason = report.off.as_ref()?;
        Some(format!("{} is off: {reason}", report.source))
    }));
    warnings
}

/// Adds routes given in code to the configuration and checks them against all handlers.
fn merge_code_routes(
    config: &mut Config,
    routes: Vec<RouteConfig>,
    custom: &[HandlerEntry],
) -> Result<(), ConfigError> {
    if !routes.is_empty() {
        if config.implicit_log_route {
            // The file listed no routes: only `HOOKLINE_FORWARD_URL`'s is left beside the code's.
            config
                .routes
                .retain(|r| !(r.name.is_none() && r.handler == crate::config::LOG_HANDLER));
            config.implicit_log_route = false;
        }
        config.routes.extend(routes);
    }
    for route in &config.routes {
        let known = config.handlers.contains_key(&route.handler)
            || custom.iter().any(|(name, _, _)| *name == route.handler);
        if !known {
            return Err(ConfigError::Invalid(format!(
                "route {:?} refers to handler {:?}, which is neither configured nor added in code",
                route.name(),
                route.handler
            )));
        }
    }
    Ok(())
}

/// Instantiates the handlers of `[handlers]`; in [`Mode::Check`], checks the `file` handlers'
/// paths instead of creating them.
fn configured_handlers(config: &Config, mode: Mode) -> Result<Vec<HandlerEntry>, ConfigError> {
    let mut handlers = Vec::new();
    for (name, handler_config) in &config.handlers {
        if let Some(handler) = handler(name, handler_config, mode)? {
            handlers.push((name.clone(), handler, handler_config.concurrency()));
        }
    }
    Ok(handlers)
}

/// One configured handler, or `None` for a `file` handler that was only checked.
fn handler(
    name: &str,
    config: &HandlerConfig,
    mode: Mode,
) -> Result<Option<Arc<dyn Handler>>, ConfigError> {
    let invalid = |e: String| ConfigError::Invalid(format!("handler {name:?}: {e}"));
    Ok(Some(match config {
        HandlerConfig::Log {
            include_personal, ..
        } => Arc::new(LogHandler {
            include_personal: *include_personal,
        }),
        HandlerConfig::Forward {
            url,
            secret,
            format,
            timeout,
            retry_client_errors,
            ..
        } => Arc::new(
            ForwardHandler::new(url, secret, *format, *timeout, *retry_client_errors).map_err(
                |e| {
                    let setting = if name == ENV_FORWARD_HANDLER {
                        "HOOKLINE_FORWARD_URL and HOOKLINE_FORWARD_SECRET, or [handlers.forward]"
                            .to_owned()
                    } else {
                        format!("[handlers.{name}]")
                    };
                    invalid(format!("{e} (set in {setting})"))
                },
            )?,
        ),
        HandlerConfig::File { path, .. } if mode == Mode::Check => {
            FileHandler::check(path).map_err(|e| invalid(format!("cannot write its file: {e}")))?;
            return Ok(None);
        }
        HandlerConfig::File { path, .. } => Arc::new(FileHandler::open(path).map_err(|e| {
            // The check explains what the OS error does not (whose directory, what to do).
            invalid(match FileHandler::check(path) {
                Err(problem) => format!("cannot write its file: {problem}"),
                Ok(()) => format!("cannot open {}: {e}", path.display()),
            })
        })?),
    }))
}
