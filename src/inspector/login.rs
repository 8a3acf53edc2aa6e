//! Logging in with the admin token, and out.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};

use super::guard::{local_path, same_origin, OverTls};
use super::session::{Session, COOKIE};
use super::view::{render, PageError};
use super::{assets, Inspector};

/// The login page.
#[derive(Template)]
#[template(path = "inspector/login.html")]
struct LoginPage {
    /// Where the form posts.
    action: String,
    /// Where to go after logging in.
    next: String,
    /// The stylesheet.
    css: String,
    /// Why the last try failed.
    error: Option<&'static str>,
}

/// The login form's fields.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(super) struct LoginForm {
    /// The admin token.
    token: String,
    /// Where to go after logging in.
    next: String,
}

impl Inspector {
    /// Where to go after logging in: `next` when it is a page of the inspector, else home.
    fn after_login(&self, next: &str) -> String {
        local_path(&self.base, next).unwrap_or_else(|| self.at("/"))
    }

    /// The login page, with an error when a try failed.
    fn login_page(&self, next: &str, error: Option<&'static str>) -> LoginPage {
        LoginPage {
            action: self.at("/login"),
            next: self.after_login(next),
            css: assets::url(&self.base, "inspector.css"),
            error,
        }
    }

    /// The `Set-Cookie` value of a session cookie (`value` empty and no lifetime clear it).
    fn cookie(&self, value: &str, secure: bool, max_age: u64) -> String {
        let path = if self.base.is_empty() {
            "/"
        } else {
            &self.base
        };
        let secure = if secure { "; Secure" } else { "" };
        format!(
            "{COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        )
    }
}

/// The login form; without an admin token there is nothing to log in to.
pub(super) async fn form(
    State(inspector): State<Inspector>,
    Query(query): Query<LoginForm>,
) -> Result<Response, PageError> {
    if !inspector.sessions.required() {
        return Ok(Redirect::to(&inspector.after_login(&query.next)).into_response());
    }
    render(inspector.login_page(&query.next, None))
}

/// Checks the token and, when it is right, sets the session cookie (`Secure` when the request
/// came over TLS) and goes on to the page asked for.
pub(super) async fn submit(
    State(inspector): State<Inspector>,
    tls: Option<Extension<OverTls>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    if !same_origin(&headers) {
        return Ok((StatusCode::FORBIDDEN, "refused: cross-site request").into_response());
    }
    if !inspector.sessions.token_matches(&form.token) {
        tracing::warn!("inspector login with a wrong token");
        let page = inspector.login_page(&form.next, Some("That is not the admin token."));
        return Ok((StatusCode::UNAUTHORIZED, Html(page.render()?)).into_response());
    }
    let secure = tls.is_some_and(|Extension(OverTls(tls))| tls);
    let lifetime = inspector.sessions.lifetime().as_secs();
    let cookie = inspector.cookie(&inspector.sessions.issue(), secure, lifetime);
    let to = inspector.after_login(&form.next);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&to)).into_response())
}

/// Ends the session: revokes it on this replica and clears the cookie.
pub(super) async fn logout(
    State(inspector): State<Inspector>,
    tls: Option<Extension<OverTls>>,
    Extension(session): Extension<Session>,
) -> Response {
    inspector.sessions.revoke(&session);
    let secure = tls.is_some_and(|Extension(OverTls(tls))| tls);
    let cookie = inspector.cookie("", secure, 0);
    let to = inspector.at("/login");
    ([(header::SET_COOKIE, cookie)], Redirect::to(&to)).into_response()
}
