//! What the pages share: the layout's data, turning a result into a page or an error page,
//! and writing times, ages and query strings.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, NaiveDateTime, Utc};

use super::session::Session;
use super::{assets, Inspector};
use crate::store::StoreError;

/// What the layout (`base.html`) of every page needs.
pub(super) struct Chrome {
    /// The base path, for links.
    pub(super) base: String,
    /// The home page's path.
    pub(super) home: String,
    /// The stylesheet's URL.
    pub(super) css: String,
    /// The script's URL.
    pub(super) js: String,
    /// The session's CSRF token, for every form.
    pub(super) csrf: String,
    /// Whether there is a login to log out of.
    pub(super) logout: bool,
    /// Which part of the navigation is current: `overview`, `events` or `dead`.
    pub(super) nav: &'static str,
    /// Whether personal data is hidden.
    pub(super) hide_personal: bool,
}

impl Inspector {
    /// The layout's data for a page of this session.
    pub(super) fn chrome(&self, session: &Session, nav: &'static str) -> Chrome {
        Chrome {
            base: self.base.clone(),
            home: self.at("/"),
            css: assets::url(&self.base, "inspector.css"),
            js: assets::url(&self.base, "inspector.js"),
            csrf: session.csrf.clone(),
            logout: self.sessions.required(),
            nav,
            hide_personal: self.hide_personal,
        }
    }
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub(super) enum PageError {
    /// What was asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request does not make sense (a malformed time, an unknown source).
    #[error("{0}")]
    BadRequest(String),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A template failed (a bug).
    #[error("cannot render the page: {0}")]
    Render(#[from] askama::Error),
}

/// The error page.
#[derive(Template)]
#[template(path = "inspector/error.html")]
struct ErrorPage {
    /// The status, e.g. `404 Not Found`.
    status: String,
    /// What went wrong.
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = match &self {
            PageError::NotFound(_) | PageError::Store(StoreError::NotFound(_)) => {
                StatusCode::NOT_FOUND
            }
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Store(StoreError::Conflict(_)) => StatusCode::CONFLICT,
            PageError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!(error = %self, "inspector page failed");
        }
        let page = ErrorPage {
            status: status.to_string(),
            message: self.to_string(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, self.to_string()).into_response(),
        }
    }
}

/// A rendered page.
pub(super) fn render(page: impl Template) -> Result<Response, PageError> {
    Ok(Html(page.render()?).into_response())
}

/// A time as the pages show it, in UTC to the second.
pub(super) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A time as a `datetime-local` form field and a filter link hold it (UTC).
pub(super) fn form_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M").to_string()
}

/// How long ago `since` was, roughly: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub(super) fn age(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - since).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86400, secs % 86400 / 3600),
    }
}

/// A filter's time: RFC 3339, or what a `datetime-local` field sends, read as UTC.
pub(super) fn parse_time(field: &str, value: &str) -> Result<DateTime<Utc>, PageError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(at.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|at| at.and_utc())
        .ok_or_else(|| {
            PageError::BadRequest(format!(
                "{field}: {value:?} is not a time (YYYY-MM-DDTHH:MM, UTC)"
            ))
        })
}

/// A filter's optional time field: `None` when blank.
pub(super) fn given_time(
    field: &str,
    value: &Option<String>,
) -> Result<Option<DateTime<Utc>>, PageError> {
    given(value).map(|v| parse_time(field, v)).transpose()
}

/// A query string (without `?`) of the pairs whose value is not empty.
pub(super) fn query(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<_> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// `path` with the query string `query` (when not empty).
pub(super) fn with_query(path: &str, query: &str) -> String {
    match (query.is_empty(), path.contains('?')) {
        (true, _) => path.to_owned(),
        (false, false) => format!("{path}?{query}"),
        (false, true) => format!("{path}&{query}"),
    }
}

/// `page` with `replayed=<count>` in its query string, in place of any it had: where a replay
/// goes back to, to say what it did.
pub(super) fn replayed(page: &str, count: u64) -> String {
    let (path, old) = page.split_once('?').unwrap_or((page, ""));
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(old).unwrap_or_default();
    pairs.retain(|(name, _)| name != "replayed");
    pairs.push(("replayed".into(), count.to_string()));
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

/// `Some` of a form value that is not blank.
pub(super) fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::TimeDelta;

    #[test]
    fn times_round_trip_through_form_fields() {
        let at = parse_time("since", "2026-01-02T03:04").unwrap();
        assert_eq!(form_time(at), "2026-01-02T03:04");
        let rfc = parse_time("since", "2026-01-02T04:04:05+01:00").unwrap();
        assert_eq!(time(rfc), "2026-01-02 03:04:05");
        assert!(matches!(
            parse_time("since", "yesterday"),
            Err(PageError::BadRequest(_))
        ));
    }

    #[test]
    fn ages_are_short() {
        let now = Utc::now();
        assert_eq!(age(now - TimeDelta::seconds(5), now), "5 s");
        assert_eq!(age(now - TimeDelta::minutes(125), now), "2 h 5 min");
        assert_eq!(age(now - TimeDelta::hours(50), now), "2 d 2 h");
    }

    #[test]
    fn queries_skip_empty_values_and_escape_the_rest() {
        assert_eq!(query(&[("a", "x y&z"), ("b", "")]), "a=x+y%26z");
        assert_eq!(with_query("/e?x=1", "a=2"), "/e?x=1&a=2");
        assert_eq!(with_query("/e", ""), "/e");
        assert_eq!(
            replayed("/d?route=a&replayed=2", 3),
            "/d?route=a&replayed=3"
        );
        assert_eq!(replayed("/d", 1), "/d?replayed=1");
    }
}
