//! The event list: newest first, paged by cursor, filtered by source, type, status and time,
//! with a lookup by event id, provider id, contact or conversation id; new events appear on
//! the first page while it is open.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderName;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;

use super::session::Session;
use super::view::{given, given_time, query, render, time, with_query, Chrome, PageError};
use super::Inspector;
use crate::envelope::event_id;
use crate::store::{EventFilter, EventSummary, StoreError};

/// Rows per page.
const PAGE_SIZE: u32 = 50;
/// The header of a rows fragment that holds the newest `seq` the page has now.
const CURSOR: HeaderName = HeaderName::from_static("x-hookline-cursor");

/// The statuses an event can be filtered by.
const STATUSES: [&str; 5] = ["pending", "delivered", "dead", "unrouted", "undecodable"];

/// The list's query string: the filter form's fields, the lookup, and the cursors.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub(super) struct ListQuery {
    source: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// An event id, a provider id, or a contact or conversation id.
    q: Option<String>,
    /// Events about this contact or conversation id.
    about: Option<String>,
    /// Older than this `seq` (the next page).
    before: Option<i64>,
    /// Newer than this `seq` (what arrived since the page was read).
    after: Option<i64>,
}

impl ListQuery {
    /// The store's filter for this query.
    fn filter(&self, about: Option<&str>) -> Result<EventFilter, PageError> {
        Ok(EventFilter {
            source: given(&self.source).map(str::to_owned),
            event_type: given(&self.event_type).map(str::to_owned),
            status: given(&self.status).map(str::to_owned),
            since: given_time("since", &self.since)?,
            until: given_time("until", &self.until)?,
            about: about.or(given(&self.about)).map(str::to_owned),
            before: self.before,
            after: self.after,
            limit: Some(PAGE_SIZE),
            ..EventFilter::default()
        })
    }

    /// The filters as a query string (without the cursors and the lookup).
    fn filters(&self, about: Option<&str>) -> String {
        let field = |v: &Option<String>| given(v).unwrap_or("").to_owned();
        query(&[
            ("source", &field(&self.source)),
            ("type", &field(&self.event_type)),
            ("status", &field(&self.status)),
            ("since", &field(&self.since)),
            ("until", &field(&self.until)),
            ("about", about.unwrap_or(&field(&self.about))),
        ])
    }
}

/// One row of the list.
pub(super) struct Row {
    /// The paging cursor.
    seq: i64,
    /// hookline's event id.
    id: String,
    /// The event's page.
    href: String,
    /// Received, UTC.
    received: String,
    source: String,
    event_type: String,
    endpoint: String,
    provider_id: String,
    /// `pending`, `delivered`, `dead` or `unrouted`.
    status: String,
    /// The decode error of an undecodable event.
    decode_error: Option<String>,
}

impl Inspector {
    /// The rows of these events.
    fn rows(&self, events: Vec<EventSummary>) -> Vec<Row> {
        events
            .into_iter()
            .map(|e| Row {
                href: self.at(&format!("/events/{}", e.id)),
                seq: e.seq,
                id: e.id,
                received: time(e.received_at),
                source: e.source,
                event_type: e.event_type,
                endpoint: e.endpoint,
                provider_id: e.provider_id,
                status: e.status,
                decode_error: e.decode_error,
            })
            .collect()
    }

    /// The id of the event that `key` names as hookline's id or as a provider's id, if any.
    async fn lookup(&self, key: &str) -> Result<Option<String>, StoreError> {
        let candidates = std::iter::once(key.to_owned())
            .chain(self.sources.iter().map(|source| event_id(source, key)));
        for id in candidates {
            if self.store.event(&id).await?.is_some() {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }
}

/// An option of a select.
pub(super) struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// The list page.
#[derive(Template)]
#[template(path = "inspector/events.html")]
struct EventsPage {
    chrome: Chrome,
    rows: Vec<Row>,
    sources: Vec<Choice>,
    types: Vec<Choice>,
    statuses: Vec<Choice>,
    since: String,
    until: String,
    q: String,
    /// The contact or conversation id looked up, when the list is about one.
    about: Option<String>,
    /// The next page, when there may be one.
    older: Option<String>,
    /// The first page, when this is not it.
    newest: Option<String>,
    /// Where the page asks for newer events (the first page only).
    poll: Option<String>,
    /// The newest `seq` shown.
    cursor: i64,
}

/// The rows of events newer than a cursor, for the list to add on top.
#[derive(Template)]
#[template(path = "inspector/rows.html")]
struct RowsFragment {
    rows: Vec<Row>,
}

/// The list, or the event a lookup names.
pub(super) async fn page(
    State(inspector): State<Inspector>,
    Extension(session): Extension<Session>,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let lookup = given(&query.q);
    if let Some(key) = lookup {
        if let Some(id) = inspector.lookup(key).await? {
            return Ok(Redirect::to(&inspector.at(&format!("/events/{id}"))).into_response());
        }
    }
    let filter = query.filter(lookup)?;
    let events = inspector.store.list_events(filter).await?;
    let types = inspector.store.event_types().await?;
    let filters = query.filters(lookup);
    let path = inspector.at("/events");
    let cursor = events.first().map_or(0, |e| e.seq);
    let older = match events.last() {
        Some(last) if events.len() == PAGE_SIZE as usize => {
            let next = with_query(&path, &filters);
            Some(with_query(&next, &format!("before={}", last.seq)))
        }
        _ => None,
    };
    let selected = |value: &str, current: &Option<String>| given(current) == Some(value);
    let page = EventsPage {
        chrome: inspector.chrome(&session, "events"),
        rows: inspector.rows(events),
        sources: inspector
            .sources
            .names()
            .into_iter()
            .map(|name| Choice {
                value: name.into(),
                label: name.into(),
                selected: selected(name, &query.source),
            })
            .collect(),
        types: types
            .into_iter()
            .map(|t| Choice {
                selected: selected(&t.event_type, &query.event_type),
                label: format!("{} · {}", t.source, t.event_type),
                value: t.event_type,
            })
            .collect(),
        statuses: STATUSES
            .iter()
            .map(|s| Choice {
                value: (*s).into(),
                label: (*s).into(),
                selected: selected(s, &query.status),
            })
            .collect(),
        since: given(&query.since).unwrap_or("").to_owned(),
        until: given(&query.until).unwrap_or("").to_owned(),
        q: lookup.unwrap_or("").to_owned(),
        about: lookup.or(given(&query.about)).map(str::to_owned),
        older,
        newest: query.before.map(|_| with_query(&path, &filters)),
        poll: query
            .before
            .is_none()
            .then(|| with_query(&inspector.at("/events/new"), &filters)),
        cursor,
    };
    render(page)
}

/// The rows of the events newer than `after` that match the filters, newest first, with the
/// new cursor in a header.
pub(super) async fn newer(
    State(inspector): State<Inspector>,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let after = query.after.unwrap_or(0);
    let filter = EventFilter {
        before: None,
        ..query.filter(None)?
    };
    let events = inspector.store.list_events(filter).await?;
    let cursor = events.first().map_or(after, |e| e.seq);
    let html = RowsFragment {
        rows: inspector.rows(events),
    }
    .render()?;
    Ok(([(CURSOR, cursor.to_string())], axum::response::Html(html)).into_response())
}
