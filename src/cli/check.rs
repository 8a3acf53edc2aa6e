//! `hookline check-config`: runs `serve`'s own checks (`ServerBuilder::check`) and prints what
//! would run, secrets masked, with the warnings `serve` would log.

use std::process::ExitCode;

use crate::config::{Config, HandlerConfig};
use crate::server::{Plan, ServerBuilder};

/// Checks `config` as `serve` would and prints the plan; exit 2 when `serve` would refuse it.
pub(super) async fn check_config(config: Config) -> ExitCode {
    let plan = match ServerBuilder::new(config).check().await {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut lines = plan_lines(&plan);
    if !plan.warnings.is_empty() {
        lines.push(String::new());
    }
    lines.extend(plan.warnings.iter().map(|w| format!("WARNING: {w}")));
    println!("{}", lines.join("\n"));
    match plan.warnings.len() {
        0 => println!("configuration OK"),
        n => println!("\nconfiguration OK, with {n} warning(s) above"),
    }
    ExitCode::SUCCESS
}

/// What would run: listeners, store, sources and their URLs, handlers, routes.
fn plan_lines(plan: &Plan) -> Vec<String> {
    let config = &plan.config;
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
    lines.extend(plan.sources.iter().flat_map(|r| r.lines.iter().cloned()));
    for url in plan.sources.iter().flat_map(|r| &r.urls) {
        lines.push(format!(
            "webhook URL       {}: {}",
            url.paste_into,
            url.on_your_host(&config.base_path)
        ));
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
    lines
}

/// One line about a handler, its secret and URL path left out.
fn describe_handler(handler: &HandlerConfig) -> String {
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
            let shown = crate::config::url_origin(url);
            format!("forward to {shown}/… ({format:?}, signed, concurrency {concurrency})")
        }
        HandlerConfig::File { path, .. } => format!("file {}", path.display()),
    }
}

/// A list for a route line, or "any" when it is empty.
fn list_or_any(items: &[String]) -> String {
    if items.is_empty() {
        "any".into()
    } else {
        items.join(",")
    }
}
