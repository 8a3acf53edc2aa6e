//! One event: where it came from, its key fields as a card, its raw body (pretty-printed, to
//! copy or download), its decode error, every delivery with its attempts, and its replays.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::Utc;

use super::guard::local_path;
use super::json;
use super::session::Session;
use super::view::{age, render, replayed, time, Chrome, PageError};
use super::Inspector;
use crate::envelope::CardField;
use crate::store::{DeliveryInfo, EventDetail};

/// The event page.
#[derive(Template)]
#[template(path = "inspector/event.html")]
struct EventPage {
    chrome: Chrome,
    id: String,
    href: String,
    source: String,
    endpoint: String,
    event_type: String,
    provider_id: String,
    received: String,
    received_ago: String,
    status: String,
    decode_error: Option<String>,
    /// The card, by group.
    card: Vec<CardGroup>,
    /// The body, pretty-printed; `None` once pruned.
    body: Option<String>,
    deliveries: Vec<Delivery>,
    /// How many deliveries a replay just made due.
    replayed: Option<u64>,
}

/// One group of the card (`Contact`, `Message`, …).
struct CardGroup {
    name: &'static str,
    fields: Vec<(&'static str, String)>,
}

/// One delivery and its attempts.
struct Delivery {
    id: i64,
    route: String,
    handler: String,
    state: String,
    attempts: u32,
    due: String,
    last_error: Option<String>,
    history: Vec<Attempt>,
    /// Whether it can be replayed now (not while in flight).
    replayable: bool,
}

/// One attempt.
struct Attempt {
    started: String,
    duration_ms: u64,
    outcome: String,
    http_status: String,
    error: String,
}

/// The query string after a replay.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(super) struct Flash {
    replayed: Option<u64>,
}

/// A replay form's fields.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(super) struct ReplayForm {
    /// The page to go back to.
    pub(super) back: String,
}

impl Inspector {
    /// The event, or the page that says it does not exist.
    async fn detail(&self, id: &str) -> Result<EventDetail, PageError> {
        let found = self.store.event(id).await?;
        found.ok_or_else(|| PageError::NotFound(format!("event {id}")))
    }

    /// The card of a stored body, personal values hidden when so configured.
    fn card(&self, detail: &EventDetail) -> Vec<CardGroup> {
        let source = self.sources.get(&detail.summary.source);
        let fields = match (source, &detail.body) {
            (Some(source), Some(body)) => source.decode(body.as_bytes()).card(),
            _ => Vec::new(),
        };
        group(fields, self.hide_personal)
    }

    /// The body as the page shows and downloads it: pretty-printed, personal keys hidden
    /// when so configured.
    fn shown_body(&self, detail: &EventDetail) -> Option<String> {
        let keys = match self.sources.get(&detail.summary.source) {
            Some(source) if self.hide_personal => source.personal_keys(),
            _ => &[],
        };
        detail.body.as_deref().map(|body| json::pretty(body, keys))
    }

    /// A decode error as shown: with personal data hidden, the quoted parts (serde quotes the
    /// values it could not read) are left out.
    fn shown_error(&self, error: &str) -> String {
        if !self.hide_personal {
            return error.to_owned();
        }
        error
            .split('"')
            .enumerate()
            .map(|(i, part)| if i % 2 == 1 { "…" } else { part })
            .collect::<Vec<_>>()
            .join("\"")
    }
}

/// Card fields grouped, a new group whenever the group changes or a label repeats (a second
/// LINE user, a second attachment).
fn group(fields: Vec<CardField>, hide_personal: bool) -> Vec<CardGroup> {
    let mut groups: Vec<CardGroup> = Vec::new();
    for field in fields {
        let value = if field.personal && hide_personal {
            "(hidden)".to_owned()
        } else {
            field.value
        };
        match groups.last_mut() {
            Some(last)
                if last.name == field.group
                    && !last.fields.iter().any(|(l, _)| *l == field.label) =>
            {
                last.fields.push((field.label, value));
            }
            _ => groups.push(CardGroup {
                name: field.group,
                fields: vec![(field.label, value)],
            }),
        }
    }
    groups
}

/// A delivery as the page shows it.
fn delivery(d: DeliveryInfo) -> Delivery {
    Delivery {
        replayable: d.state != "inflight",
        id: d.id,
        route: d.route,
        handler: d.handler,
        state: d.state,
        attempts: d.attempts,
        due: time(d.due_at),
        last_error: d.last_error,
        history: d
            .history
            .into_iter()
            .map(|a| Attempt {
                started: time(a.started_at),
                duration_ms: a.duration_ms,
                outcome: a.outcome,
                http_status: a.http_status.map(|s| s.to_string()).unwrap_or_default(),
                error: a.error.unwrap_or_default(),
            })
            .collect(),
    }
}

/// The event page.
pub(super) async fn page(
    State(inspector): State<Inspector>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let detail = inspector.detail(&id).await?;
    let card = inspector.card(&detail);
    let body = inspector.shown_body(&detail);
    let s = detail.summary;
    render(EventPage {
        chrome: inspector.chrome(&session, "events"),
        href: inspector.at(&format!("/events/{}", s.id)),
        decode_error: s.decode_error.as_deref().map(|e| inspector.shown_error(e)),
        received_ago: age(s.received_at, Utc::now()),
        received: time(s.received_at),
        id: s.id,
        source: s.source,
        endpoint: s.endpoint,
        event_type: s.event_type,
        provider_id: s.provider_id,
        status: s.status,
        card,
        body,
        deliveries: detail.deliveries.into_iter().map(delivery).collect(),
        replayed: flash.replayed,
    })
}

/// The body as a file: the exact bytes received, or with personal data hidden, the shown body.
pub(super) async fn body(
    State(inspector): State<Inspector>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let detail = inspector.detail(&id).await?;
    let body = match inspector.hide_personal {
        true => inspector.shown_body(&detail),
        false => detail.body.clone(),
    };
    let body =
        body.ok_or_else(|| PageError::NotFound(format!("the body of event {id} (pruned)")))?;
    let disposition = format!("attachment; filename=\"{}.json\"", detail.summary.id);
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// Replays every delivery of the event, then shows it.
pub(super) async fn replay(
    State(inspector): State<Inspector>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let count = inspector.replayer.event(&id).await?;
    let page = inspector.at(&format!("/events/{id}"));
    Ok(Redirect::to(&replayed(&page, count)).into_response())
}

/// Replays one delivery, then goes back to the page the form was on.
pub(super) async fn replay_delivery(
    State(inspector): State<Inspector>,
    Path(id): Path<i64>,
    Form(form): Form<ReplayForm>,
) -> Result<Response, PageError> {
    inspector.replayer.delivery(id).await?;
    let back =
        local_path(&inspector.base, &form.back).unwrap_or_else(|| inspector.at("/dead-letters"));
    Ok(Redirect::to(&replayed(&back, 1)).into_response())
}
