//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, hidden from the docs).
//!
//! Some code that reads what senders send is crate-private: the client address behind proxies,
//! routes' body conditions, the public router with its request layer. The fuzz targets are a
//! crate of their own, so this module hands them exactly those pieces, under the feature, rather
//! than making them hookline's public API. What each target checks: docs/fuzzing.md.

use std::sync::Arc;

use crate::config::Config;
use crate::dispatch::{Dispatcher, RetryPolicy};
use crate::server::{build_intake, public_router, StartError};
use crate::store::{SqliteStore, Store};

/// Compiled `[[routes]]`, whose `when` conditions read the sender's body (target `routes`).
pub use crate::dispatch::Router;
/// The client address from `Forwarded` / `X-Forwarded-For` (target `client_ip`).
pub use crate::server::client_ip::TrustedProxies;
/// How access-log lines hide the liveDesk URL token (target `livedesk_path`).
pub use crate::server::http::masked_path;

/// The router `hookline serve` answers the public listener with for `config`: every provider's
/// routes under the base path, health, the request layer and the panic layer.
///
/// Behind it is a SQLite store in `config.data_dir` and a dispatcher that is never started, so
/// a request that gets as far as a commit is stored but never delivered.
pub fn public_router_for(config: &Config) -> Result<axum::Router, StartError> {
    let providers = config
        .sources
        .build(config.tolerance, &config.allowed_ips)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(
        &config.data_dir,
        config.store.synchronous,
        config.store.max_size,
    )?);
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        crate::sources::all(),
        Vec::new(),
        RetryPolicy::from(&config.delivery),
        config.delivery.timeout,
        config.delivery.shutdown_grace,
    ));
    let intake = Arc::new(build_intake(config, store, dispatcher));
    Ok(public_router(config, providers, intake))
}

/// The path prefixes whose next segment is a secret, as the request layer masks them in logs.
pub fn secret_paths(config: &Config) -> Vec<&'static str> {
    config.sources.secret_paths()
}
