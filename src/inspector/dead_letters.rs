//! The dead letters: grouped by route and by error, listed newest first, replayed one by one
//! or all that match a filter, after a page that says how many that is; and the keys of
//! ordered routes that a dead letter blocks, each with its skip button (docs/ordering.md).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};

use super::event::ReplayForm;
use super::guard::local_path;
use super::session::Session;
use super::view::{
    given, given_time, query, render, replayed, time, with_query, Chrome, PageError,
};
use super::Inspector;
use crate::store::{BlockedKey, DeliveryInfo, EventFilter, GroupCount};

/// Dead letters listed on the page.
const LISTED: u32 = 100;

/// The filter of the page and of a replay, and the replay's confirmation.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub(super) struct DeadQuery {
    source: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    route: Option<String>,
    error: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// After a replay: how many.
    replayed: Option<u64>,
    /// On a replay: the count the operator confirmed.
    confirm: Option<u64>,
}

impl DeadQuery {
    /// The store's filter.
    fn filter(&self, limit: Option<u32>) -> Result<EventFilter, PageError> {
        Ok(EventFilter {
            source: given(&self.source).map(str::to_owned),
            event_type: given(&self.event_type).map(str::to_owned),
            route: given(&self.route).map(str::to_owned),
            error: given(&self.error).map(str::to_owned),
            since: given_time("since", &self.since)?,
            until: given_time("until", &self.until)?,
            limit,
            ..EventFilter::default()
        })
    }

    /// The filter's fields that are set, as name and value.
    fn fields(&self) -> Vec<(&'static str, String)> {
        [
            ("source", &self.source),
            ("type", &self.event_type),
            ("route", &self.route),
            ("error", &self.error),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(name, value)| given(value).map(|v| (name, v.to_owned())))
        .collect()
    }

    /// The filter with one more field set, as a query string.
    fn and(&self, name: &str, value: &str) -> String {
        let mut fields: Vec<(&str, String)> = self
            .fields()
            .into_iter()
            .filter(|(n, _)| *n != name)
            .collect();
        fields.push((name, value.to_owned()));
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
        query(&pairs)
    }
}

/// A group with the link to its dead letters.
struct Group {
    label: String,
    count: u64,
    href: String,
}

/// One dead letter.
struct Letter {
    id: i64,
    event_id: String,
    event_href: String,
    route: String,
    handler: String,
    attempts: u32,
    updated: String,
    last_error: String,
}

/// A key of an ordered route that a dead letter blocks.
struct Blocked {
    route: String,
    key: String,
    /// The dead delivery at its head.
    head: i64,
    event_id: String,
    event_href: String,
    since: String,
    waiting: u64,
}

/// The dead-letters page.
#[derive(Template)]
#[template(path = "inspector/dead_letters.html")]
struct DeadLettersPage {
    chrome: Chrome,
    /// The filter's fields, shown and carried by the replay form.
    fields: Vec<(&'static str, String)>,
    total: u64,
    by_route: Vec<Group>,
    by_error: Vec<Group>,
    letters: Vec<Letter>,
    /// Keys that dead letters block (always all of them, whatever the filter).
    blocked: Vec<Blocked>,
    /// This page, for the replay forms to come back to.
    back: String,
    replayed: Option<u64>,
}

/// The confirmation of a replay of every dead letter that matches a filter.
#[derive(Template)]
#[template(path = "inspector/confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    fields: Vec<(&'static str, String)>,
    count: u64,
    cancel: String,
}

impl Inspector {
    /// Groups with links to the dead letters of each.
    fn groups(&self, groups: Vec<GroupCount>, filter: &DeadQuery, field: &str) -> Vec<Group> {
        let path = self.at("/dead-letters");
        groups
            .into_iter()
            .map(|g| {
                let key = g.key.unwrap_or_default();
                Group {
                    href: with_query(&path, &filter.and(field, &key)),
                    label: if key.is_empty() {
                        "(no error text)".into()
                    } else {
                        key
                    },
                    count: g.count,
                }
            })
            .collect()
    }

    /// A blocked key as the page lists it.
    fn blocked(&self, b: BlockedKey) -> Blocked {
        Blocked {
            event_href: self.at(&format!("/events/{}", b.event_id)),
            route: b.route,
            key: b.key,
            head: b.head,
            event_id: b.event_id,
            since: time(b.since),
            waiting: b.waiting,
        }
    }

    /// A dead letter as the page lists it.
    fn letter(&self, d: DeliveryInfo) -> Letter {
        Letter {
            event_href: self.at(&format!("/events/{}", d.event_id)),
            id: d.id,
            event_id: d.event_id,
            route: d.route,
            handler: d.handler,
            attempts: d.attempts,
            updated: time(d.due_at),
            last_error: d.last_error.unwrap_or_default(),
        }
    }
}

/// The dead letters that match the filter, grouped and listed.
pub(super) async fn page(
    State(inspector): State<Inspector>,
    Extension(session): Extension<Session>,
    Query(filter): Query<DeadQuery>,
) -> Result<Response, PageError> {
    let groups = inspector
        .store
        .dead_letter_groups(filter.filter(None)?)
        .await?;
    let letters = inspector
        .store
        .dead_letters(filter.filter(Some(LISTED))?)
        .await?;
    let blocked = inspector.store.blocked_keys().await?;
    let fields = filter.fields();
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    render(DeadLettersPage {
        blocked: blocked.into_iter().map(|b| inspector.blocked(b)).collect(),
        chrome: inspector.chrome(&session, "dead"),
        back: with_query(&inspector.at("/dead-letters"), &query(&pairs)),
        total: groups.total,
        by_route: inspector.groups(groups.by_route, &filter, "route"),
        by_error: inspector.groups(groups.by_error, &filter, "error"),
        letters: letters.into_iter().map(|d| inspector.letter(d)).collect(),
        fields,
        replayed: filter.replayed,
    })
}

/// Replays every dead letter that matches the form's filter once the operator has confirmed
/// the count; before that, the page that asks.
pub(super) async fn replay(
    State(inspector): State<Inspector>,
    Extension(session): Extension<Session>,
    Form(form): Form<DeadQuery>,
) -> Result<Response, PageError> {
    let filter = form.filter(None)?;
    let fields = form.fields();
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let page = with_query(&inspector.at("/dead-letters"), &query(&pairs));
    if form.confirm.is_none() {
        let count = inspector.store.dead_letter_groups(filter).await?.total;
        return render(ConfirmPage {
            chrome: inspector.chrome(&session, "dead"),
            fields,
            count,
            cancel: page,
        });
    }
    let count = inspector.replayer.dead(filter).await?;
    Ok(Redirect::to(&replayed(&page, count)).into_response())
}

/// Lets the key that dead letter `id` blocks go on (it stays a dead letter), then back to the
/// page the form was on.
pub(super) async fn skip(
    State(inspector): State<Inspector>,
    Path(id): Path<i64>,
    Form(form): Form<ReplayForm>,
) -> Result<Response, PageError> {
    inspector.replayer.skip(id).await?;
    let back =
        local_path(&inspector.base, &form.back).unwrap_or_else(|| inspector.at("/dead-letters"));
    Ok(Redirect::to(&back).into_response())
}
