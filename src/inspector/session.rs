//! Logins as signed cookies, and the CSRF token of each login.
//!
//! A session is stateless: the cookie holds its expiry and a random nonce, signed with
//! HMAC-SHA256 under a key derived from the admin token. Every replica configured with the
//! same token accepts it, and changing the token ends every session at once. Logging out clears
//! the cookie in the browser and revokes its nonce on the replica that served the logout; a copy
//! of the cookie taken before stays valid on the other replicas until it expires
//! (docs/inspector.md).
//!
//! The CSRF token of a session is an HMAC of its nonce: a page from another site can neither
//! read it nor compute it. Without an admin token (a loopback-only admin listener) there is no
//! login, and the CSRF token comes from a key made at start-up.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The cookie's name.
pub(super) const COOKIE: &str = "hookline_session";

/// A verified login (or, without an admin token, the open inspector): what pages need of it.
#[derive(Debug, Clone)]
pub(super) struct Session {
    /// The token every form of this session carries.
    pub(super) csrf: String,
    /// The nonce that identifies it, to revoke it at logout; `None` when there is no login.
    pub(super) nonce: Option<String>,
}

/// Issues and checks sessions.
pub(super) struct Sessions {
    /// The signing key.
    key: [u8; 32],
    /// The admin token, when logins are required.
    token: Option<Vec<u8>>,
    /// How long a login lasts.
    lifetime: Duration,
    /// Nonces logged out on this replica, with their expiry (unix seconds).
    revoked: Mutex<HashMap<String, i64>>,
}

impl Sessions {
    /// Sessions signed with a key derived from `token`; without one, no login is needed and
    /// the key is random.
    pub(super) fn new(token: Option<&str>, lifetime: Duration) -> Sessions {
        let key = match token {
            Some(token) => mac(token.as_bytes(), b"hookline inspector session key v1"),
            None => {
                let mut key = [0; 32];
                rand::thread_rng().fill_bytes(&mut key);
                key
            }
        };
        Sessions {
            key,
            token: token.map(|t| t.as_bytes().to_vec()),
            lifetime,
            revoked: Mutex::new(HashMap::new()),
        }
    }

    /// Whether pages need a login.
    pub(super) fn required(&self) -> bool {
        self.token.is_some()
    }

    /// How long a login lasts.
    pub(super) fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Whether `given` is the admin token (in constant time).
    pub(super) fn token_matches(&self, given: &str) -> bool {
        self.token
            .as_deref()
            .is_some_and(|t| bool::from(t.ct_eq(given.as_bytes())))
    }

    /// A new login: the cookie value.
    pub(super) fn issue(&self) -> String {
        let mut nonce = [0; 16];
        rand::thread_rng().fill_bytes(&mut nonce);
        let expires = Utc::now().timestamp() + self.lifetime.as_secs() as i64;
        let claims = format!("{expires}.{}", hex::encode(nonce));
        let signature = URL_SAFE_NO_PAD.encode(mac(&self.key, claims.as_bytes()));
        format!("{claims}.{signature}")
    }

    /// The session of a request with this cookie value, if it is signed, unexpired and not
    /// logged out; without an admin token, the open session.
    pub(super) fn verify(&self, cookie: Option<&str>) -> Option<Session> {
        if !self.required() {
            return Some(self.session(None));
        }
        let (claims, signature) = cookie?.rsplit_once('.')?;
        let expected = URL_SAFE_NO_PAD.encode(mac(&self.key, claims.as_bytes()));
        if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
            return None;
        }
        let (expires, nonce) = claims.split_once('.')?;
        let expires: i64 = expires.parse().ok()?;
        let revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        if expires <= Utc::now().timestamp() || revoked.contains_key(nonce) {
            return None;
        }
        Some(self.session(Some(nonce)))
    }

    /// Revokes a session on this replica until it would have expired.
    pub(super) fn revoke(&self, session: &Session) {
        let Some(nonce) = &session.nonce else { return };
        let now = Utc::now().timestamp();
        let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        revoked.retain(|_, expires| *expires > now);
        revoked.insert(nonce.clone(), now + self.lifetime.as_secs() as i64);
    }

    /// The session of a nonce (the open inspector's has none), with its CSRF token.
    fn session(&self, nonce: Option<&str>) -> Session {
        let csrf = mac(
            &self.key,
            format!("csrf.{}", nonce.unwrap_or("open")).as_bytes(),
        );
        Session {
            csrf: URL_SAFE_NO_PAD.encode(csrf),
            nonce: nonce.map(str::to_owned),
        }
    }

    /// Whether `given` is the CSRF token of `session` (in constant time).
    pub(super) fn csrf_matches(session: &Session, given: &str) -> bool {
        bool::from(session.csrf.as_bytes().ct_eq(given.as_bytes()))
    }
}

/// HMAC-SHA256 of `message` under `key`.
fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn an_issued_session_verifies_on_every_replica_with_the_same_token() {
        let (one, other) = (
            Sessions::new(Some("t0k"), HOUR),
            Sessions::new(Some("t0k"), HOUR),
        );
        let cookie = one.issue();
        let session = other.verify(Some(&cookie)).expect("valid elsewhere");
        assert_eq!(session.csrf, one.verify(Some(&cookie)).unwrap().csrf);
        assert!(Sessions::new(Some("other"), HOUR)
            .verify(Some(&cookie))
            .is_none());
    }

    #[test]
    fn tampered_expired_and_revoked_sessions_are_refused() {
        let sessions = Sessions::new(Some("t0k"), HOUR);
        let cookie = sessions.issue();
        let (claims, signature) = cookie.rsplit_once('.').unwrap();
        let (expires, nonce) = claims.split_once('.').unwrap();
        let later = expires.parse::<i64>().unwrap() + 3600;
        assert!(sessions
            .verify(Some(&format!("{later}.{nonce}.{signature}")))
            .is_none());
        assert!(sessions.verify(Some("garbage")).is_none());
        assert!(sessions.verify(None).is_none());

        let past = format!("{}.{nonce}", Utc::now().timestamp() - 1);
        let signed = URL_SAFE_NO_PAD.encode(mac(&sessions.key, past.as_bytes()));
        assert!(sessions.verify(Some(&format!("{past}.{signed}"))).is_none());

        let session = sessions.verify(Some(&cookie)).unwrap();
        sessions.revoke(&session);
        assert!(sessions.verify(Some(&cookie)).is_none());
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_match_only_their_own() {
        let sessions = Sessions::new(Some("t0k"), HOUR);
        let a = sessions.verify(Some(&sessions.issue())).unwrap();
        let b = sessions.verify(Some(&sessions.issue())).unwrap();
        assert_ne!(a.csrf, b.csrf);
        assert!(Sessions::csrf_matches(&a, &a.csrf));
        assert!(!Sessions::csrf_matches(&a, &b.csrf));
        assert!(!Sessions::csrf_matches(&a, ""));
    }

    #[test]
    fn without_a_token_everyone_has_the_open_session_and_nobody_logs_in() {
        let sessions = Sessions::new(None, HOUR);
        assert!(!sessions.required());
        assert!(sessions.verify(None).is_some());
        assert!(!sessions.token_matches(""));
    }
}
