//! The inspector: the web UI on the admin listener where an engineer on call sees what a
//! provider sent, what hookline did with it, and replays it.
//!
//! Pages are rendered on the server from askama templates (`templates/inspector/`), which
//! escape every value: whatever a provider sent (a contact's name, a chat message) is shown as
//! text, never as markup. The little JavaScript there is (`assets/inspector.js`: new events
//! appearing in the list, the copy button) and the stylesheet are compiled in (`assets`), and
//! every page works without them. A strict Content-Security-Policy forbids inline scripts and
//! styles and anything from another site.
//!
//! With an admin token, every page and action needs a login (`session`: a signed cookie), and
//! every form that changes something (replays, logout) must come from a page of the inspector
//! itself (`guard`: `Sec-Fetch-Site`/`Origin`, and the session's CSRF token). Without one, the
//! admin listener is on loopback and the pages are open there.
//!
//! The pages: the overview (`overview`), the event list (`events`), one event (`event`), the
//! dead letters (`dead_letters`), and the login (`login`). docs/inspector.md describes them.

mod assets;
mod chart;
mod config;
mod dead_letters;
mod event;
mod events;
mod guard;
mod json;
mod login;
mod overview;
mod session;
mod view;

use std::sync::Arc;

use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::dispatch::Replayer;
use crate::envelope::Sources;
use crate::store::Store;

pub use config::InspectorConfig;
pub use guard::OverTls;

/// What the pages need; cheap to clone.
#[derive(Clone)]
pub struct Inspector(Arc<Shared>);

/// The inspector's state, shared by every request.
pub struct Shared {
    /// The inbox.
    store: Arc<dyn Store>,
    /// Replays, exactly as the admin API does them.
    replayer: Replayer,
    /// The sources this build serves: their names for the filters, their decoders for cards.
    sources: Sources,
    /// Logins and CSRF tokens.
    sessions: session::Sessions,
    /// The path prefix of every page (`""` or e.g. `/hookline`).
    base: String,
    /// Hide personal data in cards and bodies.
    hide_personal: bool,
    /// The metrics recorder, for the refused requests of the overview.
    metrics: Option<PrometheusHandle>,
}

impl std::ops::Deref for Inspector {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Inspector {
    /// The inspector over this inbox; `token` is the admin token (logins are required when
    /// it is set).
    pub fn new(
        config: &InspectorConfig,
        token: Option<&str>,
        store: Arc<dyn Store>,
        replayer: Replayer,
        sources: Sources,
        metrics: Option<PrometheusHandle>,
    ) -> Inspector {
        Inspector(Arc::new(Shared {
            store,
            replayer,
            sources,
            sessions: session::Sessions::new(token, config.session_lifetime),
            base: config.base_path.clone(),
            hide_personal: config.hide_personal,
            metrics,
        }))
    }

    /// The full path of an inspector path (`/events` → `/hookline/events`); the home page is
    /// the base path itself, or `/`.
    fn at(&self, path: &str) -> String {
        match (self.base.as_str(), path) {
            ("", path) => path.to_owned(),
            (base, "/") => base.to_owned(),
            (base, path) => format!("{base}{path}"),
        }
    }
}

/// The inspector's routes, under its base path: the pages behind the session check, the login
/// and the assets without it, and the security headers on all of them.
pub fn router(inspector: Inspector) -> Router {
    let at = |path: &str| inspector.at(path);
    let mut pages = Router::new()
        .route(&at("/"), get(overview::page))
        .route(&at("/events"), get(events::page))
        .route(&at("/events/new"), get(events::newer))
        .route(&at("/events/{id}"), get(event::page))
        .route(&at("/events/{id}/body"), get(event::body))
        .route(&at("/events/{id}/replay"), post(event::replay))
        .route(&at("/deliveries/{id}/replay"), post(event::replay_delivery))
        .route(&at("/dead-letters"), get(dead_letters::page))
        .route(&at("/dead-letters/replay"), post(dead_letters::replay))
        .route(&at("/deliveries/{id}/skip"), post(dead_letters::skip))
        .route(&at("/logout"), post(login::logout));
    if !inspector.base.is_empty() {
        pages = pages.route(&format!("{}/", inspector.base), get(overview::page));
    }
    let pages = pages
        .route_layer(from_fn(guard::refuse_cross_site))
        .route_layer(from_fn_with_state(
            inspector.clone(),
            guard::require_session,
        ));
    Router::new()
        .route(&at("/login"), get(login::form).post(login::submit))
        .route(&at("/assets/{file}"), get(assets::serve))
        .merge(pages)
        .layer(from_fn(guard::security_headers))
        .with_state(inspector)
}
