//! Standard Webhooks signatures (<https://www.standardwebhooks.com>).
//!
//! ChatBrick's webhooks are delivered by Svix, which signs them the Standard Webhooks way; hookline's
//! `forward` handler signs what it sends on the same way, so one module serves both directions.
//!
//! The signed content is `{id}.{timestamp}.{raw body bytes}`. A `v1` signature is the base64
//! HMAC-SHA256 of it under a `whsec_` key; a `v1a` signature is the base64 ed25519 signature of it
//! (`whpk_` public keys verify, `whsk_` secret keys sign and verify). Several keys may be configured
//! at once so that a secret can be rotated without dropping deliveries.
//!
//! [`VerifyError`] also serves the liveDesk verifier, so that every provider reports the same
//! machine-readable reasons.

use std::{fmt, time::Duration};

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD as CANONICAL_BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer as _};
use hmac::{digest::Output, Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a request's timestamp may be from our clock, past or future, before it is a replay.
///
/// Five minutes is what Svix and the Standard Webhooks libraries use.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// HMAC-SHA256, the MAC behind `v1` signatures and Chatwoot's `sha256=` signatures.
pub(crate) type HmacSha256 = Hmac<Sha256>;

mod key;
#[cfg(test)]
mod tests;

pub(crate) use key::hmac_sha256;
pub use key::{Key, KeyError};
use key::{Material, SigningMaterial, BASE64};

/// Why a request did not authenticate.
///
/// Shared by every provider so that the server maps authentication failures to HTTP responses in
/// one place; [`VerifyError::reason`] is what goes back to the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent, empty, or not text; names the header as it was looked up.
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    /// The timestamp header is not an integer number of seconds.
    #[error("timestamp header is not an integer")]
    InvalidTimestamp,
    /// The timestamp is further from our clock than the tolerance: a replay or a skewed clock.
    #[error("timestamp is outside the allowed tolerance")]
    StaleTimestamp,
    /// No signature entry matched any configured key (malformed entries count as not matching).
    #[error("no signature matched")]
    BadSignature,
    /// liveDesk: the token in the URL is not the configured one.
    #[error("unknown URL token")]
    UnknownToken,
}

impl VerifyError {
    /// Every [`VerifyError::reason`]: the outcomes of `hookline_requests_total` that are
    /// authentication failures.
    pub const REASONS: [&'static str; 5] = [
        "missing_header",
        "invalid_timestamp",
        "stale_timestamp",
        "bad_signature",
        "unknown_token",
    ];

    /// A short, stable, machine-readable reason for the response body and for metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader(_) => "missing_header",
            VerifyError::InvalidTimestamp => "invalid_timestamp",
            VerifyError::StaleTimestamp => "stale_timestamp",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::UnknownToken => "unknown_token",
        }
    }
}

/// A header's value as text, trimmed; absent, empty or non-UTF-8 values count as missing.
pub(crate) fn header_text<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<&'a str, VerifyError> {
    headers
        .get(name)
        .and_then(|value| std::str::from_utf8(value.as_bytes()).ok())
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .ok_or(VerifyError::MissingHeader(name))
}

/// Parses a unix-seconds timestamp and checks that it is within `tolerance` of `now_unix`, both
/// ways, bounds included.
pub(crate) fn fresh_timestamp(
    text: &str,
    now_unix: i64,
    tolerance: Duration,
) -> Result<i64, VerifyError> {
    let timestamp: i64 = text.parse().map_err(|_| VerifyError::InvalidTimestamp)?;
    if now_unix.abs_diff(timestamp) > tolerance.as_secs() {
        return Err(VerifyError::StaleTimestamp);
    }
    Ok(timestamp)
}

/// The three header names of one header family.
struct HeaderNames {
    /// Message id, the same on every retry: the dedupe key.
    id: &'static str,
    /// Unix seconds of this attempt.
    timestamp: &'static str,
    /// Space-separated `version,base64` entries.
    signature: &'static str,
}

/// The names in the Standard Webhooks spec.
static STANDARD_HEADERS: HeaderNames = HeaderNames {
    id: "webhook-id",
    timestamp: "webhook-timestamp",
    signature: "webhook-signature",
};

/// The names Svix sends by default (ChatBrick's documentation uses these).
static SVIX_HEADERS: HeaderNames = HeaderNames {
    id: "svix-id",
    timestamp: "svix-timestamp",
    signature: "svix-signature",
};

impl HeaderNames {
    /// The family a request uses: `webhook-*` when `webhook-id` is present, `svix-*` otherwise.
    ///
    /// When neither id is present, a request carrying other `webhook-*` headers is taken as
    /// `webhook-*` so that the error names the header that is really missing.
    fn for_request(headers: &HeaderMap) -> &'static HeaderNames {
        let has = |name: &str| headers.contains_key(name);
        let standard = has(STANDARD_HEADERS.id)
            || (!has(SVIX_HEADERS.id)
                && (has(STANDARD_HEADERS.timestamp) || has(STANDARD_HEADERS.signature)));
        if standard {
            &STANDARD_HEADERS
        } else {
            &SVIX_HEADERS
        }
    }
}

/// The bytes that are signed: `{id}.{timestamp}.{body}`, the body untouched.
fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    content
}

/// One entry of a signature header that this module understands.
enum Entry {
    /// `v1,<base64>`: the decoded HMAC tag.
    V1(Vec<u8>),
    /// `v1a,<base64>`: the decoded ed25519 signature.
    V1a(Signature),
}

impl Entry {
    /// Parses `version,base64`; unknown versions and malformed entries give `None` and are
    /// skipped, as the spec requires.
    ///
    /// The base64 must be canonical, padding included, as every Standard Webhooks signer writes
    /// it (and the reference libraries require). Keys are read leniently because people paste
    /// them; an entry read leniently would accept a signature with its `=` changed into the
    /// space or tab that header parsing trims, a request that no sender made.
    fn parse(entry: &str) -> Option<Self> {
        let (version, encoded) = entry.split_once(',')?;
        match version {
            "v1" => CANONICAL_BASE64.decode(encoded).ok().map(Entry::V1),
            "v1a" => {
                let bytes = CANONICAL_BASE64.decode(encoded).ok()?;
                Signature::from_slice(&bytes).ok().map(Entry::V1a)
            }
            _ => None,
        }
    }
}

/// Verifies Standard Webhooks requests against one or more keys.
///
/// Any key may match, so a rotated secret can be added before the old one is removed. `Debug`
/// shows only masked keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Every key currently accepted.
    keys: Vec<Key>,
    /// How far the request's timestamp may be from our clock; see [`DEFAULT_TOLERANCE`].
    tolerance: Duration,
}

/// What a verified request told us, for the envelope and for deduplication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The message id, the same on every retry of one message.
    pub id: String,
    /// Unix seconds of this delivery attempt, as signed.
    pub timestamp: i64,
}

impl Verifier {
    /// A verifier accepting any of `keys`, with timestamps up to `tolerance` away (inclusive).
    pub fn new(keys: Vec<Key>, tolerance: Duration) -> Self {
        Verifier { keys, tolerance }
    }

    /// Authenticates one request from its headers and raw body.
    ///
    /// Reads the `webhook-*` headers when `webhook-id` is present, the `svix-*` ones otherwise.
    /// Checks the timestamp against `now_unix` (unix seconds) first, then that any `v1` entry
    /// matches any HMAC key or any `v1a` entry verifies under any ed25519 key. Tags are compared
    /// in constant time.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now_unix: i64,
    ) -> Result<Verified, VerifyError> {
        let names = HeaderNames::for_request(headers);
        let id = header_text(headers, names.id)?;
        let timestamp = header_text(headers, names.timestamp)?;
        let signatures = header_text(headers, names.signature)?;
        let timestamp = fresh_timestamp(timestamp, now_unix, self.tolerance)?;
        let content = signed_content(id, timestamp, body);
        if !self.any_entry_matches(signatures, &content) {
            return Err(VerifyError::BadSignature);
        }
        Ok(Verified {
            id: id.to_owned(),
            timestamp,
        })
    }

    /// Whether any entry of the space-separated header verifies `content` under any key.
    fn any_entry_matches(&self, signatures: &str, content: &[u8]) -> bool {
        let tags: Vec<Output<HmacSha256>> = self
            .keys
            .iter()
            .filter_map(Key::hmac)
            .map(|mac| mac.clone().chain_update(content).finalize().into_bytes())
            .collect();
        signatures
            .split_ascii_whitespace()
            .filter_map(Entry::parse)
            .any(|entry| match entry {
                Entry::V1(tag) => tags.iter().any(|ours| ours.as_slice().ct_eq(&tag).into()),
                Entry::V1a(signature) => self
                    .keys
                    .iter()
                    .filter_map(Key::ed25519)
                    .any(|key| key.verify_strict(content, &signature).is_ok()),
            })
    }
}

/// Signs outgoing messages the Standard Webhooks way, for the `forward` handler.
///
/// An HMAC key produces `v1,<base64>`, an ed25519 secret key `v1a,<base64>`. `Debug` shows only
/// the masked key.
#[derive(Clone)]
pub struct Signer {
    /// The key that signs; a public key cannot get here.
    material: SigningMaterial,
    /// The key's masked form, for `Debug`.
    masked: String,
}

impl Signer {
    /// A signer using `key`; a `whpk_` public key is refused with [`KeyError::VerifyOnly`].
    pub fn new(key: Key) -> Result<Self, KeyError> {
        match key.material {
            Material::Signing(material) => Ok(Signer {
                material,
                masked: key.masked,
            }),
            Material::VerifyOnly(_) => Err(KeyError::VerifyOnly),
        }
    }

    /// The signature header entry for one message, e.g. `v1,g0hM…=`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let content = signed_content(id, timestamp, body);
        match &self.material {
            SigningMaterial::Hmac(mac) => {
                let tag = mac.clone().chain_update(&content).finalize().into_bytes();
                format!("v1,{}", BASE64.encode(tag))
            }
            SigningMaterial::Ed25519(key) => {
                format!("v1a,{}", BASE64.encode(key.sign(&content).to_bytes()))
            }
        }
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("key", &self.masked).finish()
    }
}
