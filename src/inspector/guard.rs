//! What stands between a request and a page: the session, the cross-site checks of every form
//! that changes something, and the headers every response carries.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::session::{Session, Sessions, COOKIE};
use super::Inspector;

/// The Content-Security-Policy of every response: scripts and styles only from the
/// inspector's own files (never inline), nothing from another site, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest form a POST may carry (replay filters, the login): forms here are tiny.
const FORM_LIMIT: usize = 16 * 1024;

/// Whether a request reached hookline over TLS, as the admin listener knows it (a trusted
/// proxy's `X-Forwarded-Proto: https`): login cookies are then marked `Secure`. Set by the
/// server on every request; absent means plain HTTP.
#[derive(Debug, Clone, Copy, Default)]
pub struct OverTls(pub bool);

/// The value of the session cookie of a request, if any.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

/// Passes a request with a valid session on, with the [`Session`] in its extensions; sends
/// any other to the login page, which shows nothing of the inbox.
pub(super) async fn require_session(
    State(inspector): State<Inspector>,
    mut request: Request,
    next: Next,
) -> Response {
    match inspector.sessions.verify(session_cookie(request.headers())) {
        Some(session) => {
            request.extensions_mut().insert(session);
            next.run(request).await
        }
        None => {
            let path = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let next = if request.method() == Method::GET {
                path
            } else {
                inspector.at("/")
            };
            let query = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
            Redirect::to(&format!("{}?{query}", inspector.at("/login"))).into_response()
        }
    }
}

/// Refuses a POST that another site could have made: one a browser marks as cross-site
/// (`Sec-Fetch-Site`, or an `Origin` that is not this host), or whose form lacks the session's
/// CSRF token. The form is read here and handed on unchanged.
pub(super) async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    if !same_origin(request.headers()) {
        return refused("cross-site request");
    }
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        return refused("no session");
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, FORM_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
    };
    #[derive(serde::Deserialize)]
    struct Csrf {
        #[serde(default)]
        csrf: String,
    }
    let given = serde_urlencoded::from_bytes::<Csrf>(&bytes).map(|f| f.csrf);
    if !given.is_ok_and(|given| Sessions::csrf_matches(&session, &given)) {
        return refused("missing or wrong CSRF token");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether a browser says the request comes from a page of this same origin. A request
/// without either header comes from no browser page at all (a script with the cookie would
/// still need the CSRF token).
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site == "same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((bare, host), (Some(bare), Some(host)) if bare.eq_ignore_ascii_case(host))
}

/// A refused request, logged (it is an attack or a stale page).
fn refused(why: &'static str) -> Response {
    tracing::warn!(reason = why, "inspector refused a form");
    (StatusCode::FORBIDDEN, format!("refused: {why}")).into_response()
}

/// Adds the security headers to every response of the inspector; pages are never cached
/// (they show the inbox), the versioned assets say so themselves.
pub(super) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// `candidate` when it is a path of the inspector on this host (where to go after a login or
/// a replay), else `None`: never another site.
pub(super) fn local_path(base: &str, candidate: &str) -> Option<String> {
    let inside = candidate == base
        || candidate
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'));
    let safe = candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate.contains(['\\', '\r', '\n']);
    (inside && safe).then(|| candidate.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_same_origin_requests_pass() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        let ours = [
            ("origin", "http://127.0.0.1:9090"),
            ("host", "127.0.0.1:9090"),
        ];
        assert!(same_origin(&headers(&ours)));
        let theirs = [
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:9090"),
        ];
        assert!(!same_origin(&headers(&theirs)));
        assert!(!same_origin(&headers(&[("origin", "null"), ("host", "a")])));
        assert!(same_origin(&headers(&[])));
    }

    #[test]
    fn only_paths_of_the_inspector_are_followed() {
        assert_eq!(
            local_path("", "/events?x=1").as_deref(),
            Some("/events?x=1")
        );
        assert_eq!(local_path("/ops", "/ops").as_deref(), Some("/ops"));
        assert_eq!(
            local_path("/ops", "/ops/events").as_deref(),
            Some("/ops/events")
        );
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/opsx",
            "/\\evil",
            "events",
        ] {
            assert_eq!(local_path("/ops", bad), None, "{bad}");
        }
        assert_eq!(local_path("", "//evil.example"), None);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let map = headers(&[("cookie", "a=1; hookline_session=abc.def; b=2")]);
        assert_eq!(session_cookie(&map), Some("abc.def"));
        assert_eq!(session_cookie(&headers(&[("cookie", "x=1")])), None);
    }
}
