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

use std::{fmt, str::FromStr, time::Duration};

use axum::http::HeaderMap;
use base64::{
    alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine,
};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hmac::{
    digest::{Key as HmacKeyBlock, KeyInit, Output},
    Hmac, Mac,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How far a request's timestamp may be from our clock, past or future, before it is a replay.
///
/// Five minutes is what Svix and the Standard Webhooks libraries use.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// HMAC-SHA256, the MAC behind `v1` signatures and Chatwoot's `sha256=` signatures.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Standard base64 that accepts input with or without `=` padding and writes it padded.
///
/// Svix pads, but secrets pasted by hand often lose their padding; being lenient on input costs
/// nothing since the decoded bytes are what is checked.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Prefix of a symmetric HMAC key, the kind ChatBrick's admin hands out.
const HMAC_PREFIX: &str = "whsec_";
/// Prefix of an ed25519 public key, which can only verify.
const PUBLIC_PREFIX: &str = "whpk_";
/// Prefix of an ed25519 secret key, which can sign and verify.
const SECRET_PREFIX: &str = "whsk_";

/// One configured key, parsed from its text form.
///
/// `whsec_<base64>` is an HMAC-SHA256 key (verifies and signs `v1`), `whpk_<base64>` an ed25519
/// public key (verifies `v1a`), `whsk_<base64>` an ed25519 secret key, 32-byte seed or 64-byte
/// seed-and-public-key (signs `v1a`, verifies `v1a`). Base64 without a prefix is taken as a
/// `whsec_` key, as Svix does. `Debug` prints only [`Key::masked`], so keys can sit in logged
/// config structs.
#[derive(Clone)]
pub struct Key {
    /// The decoded key, ready to use.
    material: Material,
    /// What `Debug` and [`Key::masked`] show: computed once, from the prefix, at most four base64
    /// characters and the key length.
    masked: String,
}

/// What a key can do, decided at parse time so that verifying and signing never re-decode.
#[derive(Clone)]
enum Material {
    /// A key that can sign (and therefore verify).
    Signing(SigningMaterial),
    /// A `whpk_` key: verifies `v1a` entries, cannot sign.
    VerifyOnly(VerifyingKey),
}

/// A key that can produce signatures; kept apart so that [`Signer`] cannot hold a public key.
#[derive(Clone)]
enum SigningMaterial {
    /// A `whsec_` key, already keyed into an HMAC state that is cloned per message.
    Hmac(HmacSha256),
    /// A `whsk_` key.
    Ed25519(SigningKey),
}

/// Why a key's text could not be used; the message names the prefix but never the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Nothing after the prefix, usually an unset environment variable.
    #[error("empty key after `{0}`")]
    Empty(&'static str),
    /// The part after the prefix is not standard base64.
    #[error("key after `{prefix}` is not valid base64: {reason}")]
    Base64 {
        /// The key's prefix, to tell which kind of key was meant.
        prefix: &'static str,
        /// What the base64 decoder rejected.
        reason: base64::DecodeError,
    },
    /// An ed25519 key of the wrong size, often a key of another kind given the wrong prefix.
    #[error("`{prefix}` key must decode to {expected} bytes, got {actual}")]
    Length {
        /// The key's prefix.
        prefix: &'static str,
        /// The sizes that kind of key may have.
        expected: &'static str,
        /// The size that was decoded.
        actual: usize,
    },
    /// Right size but not an ed25519 key: a public key that is not a curve point, or a 64-byte
    /// secret key whose public half does not belong to its seed.
    #[error("`{0}` key is not a valid ed25519 key")]
    Ed25519(&'static str),
    /// A [`Signer`] was asked to use a `whpk_` public key.
    #[error("a `whpk_` key is a public key: it can verify but not sign")]
    VerifyOnly,
}

impl FromStr for Key {
    type Err = KeyError;

    /// Parses `whsec_…`, `whpk_…`, `whsk_…` or bare base64 (taken as `whsec_`); surrounding
    /// whitespace, such as a newline from a secret file, is ignored.
    fn from_str(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let (prefix, encoded) = split_prefix(text);
        if encoded.is_empty() {
            return Err(KeyError::Empty(prefix));
        }
        let bytes = BASE64
            .decode(encoded)
            .map_err(|reason| KeyError::Base64 { prefix, reason })?;
        let material = Material::from_bytes(prefix, &bytes)?;
        let masked = mask(prefix, encoded, bytes.len());
        Ok(Key { material, masked })
    }
}

/// Splits a key's text into its prefix and its base64, defaulting to `whsec_` like Svix.
fn split_prefix(text: &str) -> (&'static str, &str) {
    [HMAC_PREFIX, PUBLIC_PREFIX, SECRET_PREFIX]
        .into_iter()
        .find_map(|prefix| Some((prefix, text.strip_prefix(prefix)?)))
        .unwrap_or((HMAC_PREFIX, text))
}

/// The masked form of a key: its prefix, the first four base64 characters when the key is long
/// enough for that to reveal little (16 characters or more), and its length in bytes.
fn mask(prefix: &str, encoded: &str, len: usize) -> String {
    let shown = if encoded.len() >= 16 {
        encoded.get(..4).unwrap_or_default()
    } else {
        ""
    };
    format!("{prefix}{shown}…({len} bytes)")
}

impl Material {
    /// Builds the key of the kind `prefix` names from its decoded bytes.
    fn from_bytes(prefix: &'static str, bytes: &[u8]) -> Result<Self, KeyError> {
        match prefix {
            PUBLIC_PREFIX => public_key(bytes).map(Material::VerifyOnly),
            SECRET_PREFIX => {
                secret_key(bytes).map(|key| Material::Signing(SigningMaterial::Ed25519(key)))
            }
            _ => Ok(Material::Signing(SigningMaterial::Hmac(hmac_sha256(bytes)))),
        }
    }
}

/// Decodes a `whpk_` key: exactly 32 bytes that form a valid ed25519 point.
fn public_key(bytes: &[u8]) -> Result<VerifyingKey, KeyError> {
    let bytes: &[u8; 32] = bytes.try_into().map_err(|_| KeyError::Length {
        prefix: PUBLIC_PREFIX,
        expected: "32",
        actual: bytes.len(),
    })?;
    VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::Ed25519(PUBLIC_PREFIX))
}

/// Decodes a `whsk_` key: a 32-byte seed, or 64 bytes of seed then matching public key.
fn secret_key(bytes: &[u8]) -> Result<SigningKey, KeyError> {
    if let Ok(seed) = <&[u8; 32]>::try_from(bytes) {
        return Ok(SigningKey::from_bytes(seed));
    }
    if let Ok(pair) = <&[u8; 64]>::try_from(bytes) {
        return SigningKey::from_keypair_bytes(pair).map_err(|_| KeyError::Ed25519(SECRET_PREFIX));
    }
    Err(KeyError::Length {
        prefix: SECRET_PREFIX,
        expected: "32 or 64",
        actual: bytes.len(),
    })
}

/// An HMAC-SHA256 state keyed with `key`, whatever its length.
///
/// Prepares the key as RFC 2104 says (hash it if longer than a block, zero-pad it to a block) so
/// that the infallible `KeyInit::new` can be used: `new_from_slice` returns a `Result` whose error
/// HMAC never produces, and unwrapping it would put a panic path in intake.
pub(crate) fn hmac_sha256(key: &[u8]) -> HmacSha256 {
    let mut block = HmacKeyBlock::<HmacSha256>::default();
    let hashed;
    let key = if key.len() > block.len() {
        hashed = Sha256::digest(key);
        hashed.as_slice()
    } else {
        key
    };
    block
        .iter_mut()
        .zip(key)
        .for_each(|(slot, byte)| *slot = *byte);
    <HmacSha256 as KeyInit>::new(&block)
}

impl Key {
    /// The key as it may appear in logs and error messages: prefix, at most four base64
    /// characters, and length, e.g. `whsec_MfKQ…(24 bytes)`.
    pub fn masked(&self) -> String {
        self.masked.clone()
    }

    /// The HMAC state, for `v1` entries.
    fn hmac(&self) -> Option<&HmacSha256> {
        match &self.material {
            Material::Signing(SigningMaterial::Hmac(mac)) => Some(mac),
            _ => None,
        }
    }

    /// The ed25519 public key, for `v1a` entries.
    fn ed25519(&self) -> Option<VerifyingKey> {
        match &self.material {
            Material::Signing(SigningMaterial::Ed25519(key)) => Some(key.verifying_key()),
            Material::VerifyOnly(key) => Some(*key),
            Material::Signing(SigningMaterial::Hmac(_)) => None,
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Key").field(&self.masked).finish()
    }
}

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
    fn parse(entry: &str) -> Option<Self> {
        let (version, encoded) = entry.split_once(',')?;
        match version {
            "v1" => BASE64.decode(encoded).ok().map(Entry::V1),
            "v1a" => {
                let bytes = BASE64.decode(encoded).ok()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const ENTRY: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    const SECRET_2: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID_2: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS_2: i64 = 1649367553;
    const BODY_2: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const ENTRY_2: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    const PUBLIC: &str = "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=";
    const ENTRY_V1A: &str = "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==";

    fn key(text: &str) -> Key {
        text.parse().unwrap()
    }

    fn verifier(keys: &[&str]) -> Verifier {
        Verifier::new(keys.iter().map(|k| key(k)).collect(), DEFAULT_TOLERANCE)
    }

    fn headers(prefix: &str, id: &str, ts: i64, signature: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in [
            ("id", id.to_owned()),
            ("timestamp", ts.to_string()),
            ("signature", signature.to_owned()),
        ] {
            let name = axum::http::HeaderName::try_from(format!("{prefix}-{name}")).unwrap();
            map.insert(name, HeaderValue::from_str(&value).unwrap());
        }
        map
    }

    fn svix(signature: &str) -> HeaderMap {
        headers("svix", ID, TS, signature)
    }

    #[test]
    fn first_vector_verifies() {
        let verified = verifier(&[SECRET]).verify(&svix(ENTRY), BODY, TS).unwrap();
        assert_eq!(
            verified,
            Verified {
                id: ID.into(),
                timestamp: TS
            }
        );
    }

    #[test]
    fn second_vector_verifies() {
        let map = headers("svix", ID_2, TS_2, ENTRY_2);
        assert!(verifier(&[SECRET_2]).verify(&map, BODY_2, TS_2).is_ok());
    }

    #[test]
    fn sign_reproduces_both_vectors() {
        assert_eq!(Signer::new(key(SECRET)).unwrap().sign(ID, TS, BODY), ENTRY);
        assert_eq!(
            Signer::new(key(SECRET_2)).unwrap().sign(ID_2, TS_2, BODY_2),
            ENTRY_2
        );
    }

    #[test]
    fn v1a_vector_verifies_with_public_key() {
        assert!(verifier(&[PUBLIC])
            .verify(&svix(ENTRY_V1A), BODY, TS)
            .is_ok());
    }

    #[test]
    fn hmac_key_does_not_verify_v1a_and_public_key_does_not_verify_v1() {
        assert_eq!(
            verifier(&[SECRET]).verify(&svix(ENTRY_V1A), BODY, TS),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verifier(&[PUBLIC]).verify(&svix(ENTRY), BODY, TS),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn ed25519_secret_key_signs_and_verifies() {
        let seed = BASE64.encode([7u8; 32]);
        let secret = key(&format!("whsk_{seed}"));
        let entry = Signer::new(secret.clone()).unwrap().sign(ID, TS, BODY);
        assert!(entry.starts_with("v1a,"));
        assert!(Verifier::new(vec![secret.clone()], DEFAULT_TOLERANCE)
            .verify(&svix(&entry), BODY, TS)
            .is_ok());
        let public = BASE64.encode(
            SigningKey::from_bytes(&[7u8; 32])
                .verifying_key()
                .to_bytes(),
        );
        assert!(verifier(&[&format!("whpk_{public}")])
            .verify(&svix(&entry), BODY, TS)
            .is_ok());
    }

    #[test]
    fn ed25519_secret_key_accepts_64_byte_keypair() {
        let pair = BASE64.encode(SigningKey::from_bytes(&[7u8; 32]).to_keypair_bytes());
        assert!(format!("whsk_{pair}").parse::<Key>().is_ok());
        let mut wrong = SigningKey::from_bytes(&[7u8; 32]).to_keypair_bytes();
        wrong[40] ^= 1;
        let wrong = format!("whsk_{}", BASE64.encode(wrong));
        assert_eq!(
            wrong.parse::<Key>().unwrap_err(),
            KeyError::Ed25519(SECRET_PREFIX)
        );
    }

    #[test]
    fn webhook_header_family_verifies() {
        let map = headers("webhook", ID, TS, ENTRY);
        assert_eq!(verifier(&[SECRET]).verify(&map, BODY, TS).unwrap().id, ID);
    }

    #[test]
    fn webhook_family_wins_when_webhook_id_present() {
        let mut map = headers("webhook", ID, TS, ENTRY);
        map.extend(headers("svix", "other", TS, "v1,AAAA"));
        assert_eq!(verifier(&[SECRET]).verify(&map, BODY, TS).unwrap().id, ID);
    }

    #[test]
    fn several_entries_only_last_matches() {
        let header = format!("v1,Zm9v v1,{} {ENTRY}", BASE64.encode([0u8; 32]));
        assert!(verifier(&[SECRET]).verify(&svix(&header), BODY, TS).is_ok());
    }

    #[test]
    fn rotation_second_key_matches() {
        assert!(verifier(&[SECRET_2, SECRET])
            .verify(&svix(ENTRY), BODY, TS)
            .is_ok());
    }

    #[test]
    fn unknown_versions_and_malformed_entries_are_skipped() {
        let header = format!("v2,abc garbage v1,!!notbase64 v1a,AAAA {ENTRY}");
        assert!(verifier(&[SECRET]).verify(&svix(&header), BODY, TS).is_ok());
    }

    #[test]
    fn only_wrong_entries_is_bad_signature() {
        let header = format!("v1,{} v1,{}", BASE64.encode([1u8; 32]), &ENTRY_2[3..]);
        assert_eq!(
            verifier(&[SECRET]).verify(&svix(&header), BODY, TS),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn only_malformed_entries_is_bad_signature() {
        assert_eq!(
            verifier(&[SECRET]).verify(&svix("v2,abc nonsense"), BODY, TS),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn tampered_body_is_bad_signature() {
        let mut body = BODY.to_vec();
        body[10] ^= 1;
        assert_eq!(
            verifier(&[SECRET]).verify(&svix(ENTRY), &body, TS),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn timestamp_301s_away_is_stale() {
        let v = verifier(&[SECRET]);
        assert_eq!(
            v.verify(&svix(ENTRY), BODY, TS + 301),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            v.verify(&svix(ENTRY), BODY, TS - 301),
            Err(VerifyError::StaleTimestamp)
        );
    }

    #[test]
    fn timestamp_within_tolerance_is_accepted() {
        let v = verifier(&[SECRET]);
        for now in [TS + 299, TS - 299, TS + 300, TS - 300] {
            assert!(v.verify(&svix(ENTRY), BODY, now).is_ok(), "now = {now}");
        }
    }

    #[test]
    fn tolerance_is_configurable() {
        let v = Verifier::new(vec![key(SECRET)], Duration::from_secs(10));
        assert!(v.verify(&svix(ENTRY), BODY, TS + 10).is_ok());
        assert_eq!(
            v.verify(&svix(ENTRY), BODY, TS + 11),
            Err(VerifyError::StaleTimestamp)
        );
    }

    #[test]
    fn each_missing_header_is_named() {
        for prefix in ["svix", "webhook"] {
            for name in ["id", "timestamp", "signature"] {
                let mut map = headers(prefix, ID, TS, ENTRY);
                let full = format!("{prefix}-{name}");
                map.remove(full.as_str());
                let err = verifier(&[SECRET]).verify(&map, BODY, TS).unwrap_err();
                assert_eq!(err.to_string(), format!("missing header `{full}`"));
                assert_eq!(err.reason(), "missing_header");
            }
        }
    }

    #[test]
    fn no_headers_names_svix_id() {
        let err = verifier(&[SECRET])
            .verify(&HeaderMap::new(), BODY, TS)
            .unwrap_err();
        assert_eq!(err, VerifyError::MissingHeader("svix-id"));
    }

    #[test]
    fn empty_header_counts_as_missing() {
        let mut map = svix(ENTRY);
        map.insert("svix-id", HeaderValue::from_static(""));
        assert_eq!(
            verifier(&[SECRET]).verify(&map, BODY, TS),
            Err(VerifyError::MissingHeader("svix-id"))
        );
    }

    #[test]
    fn non_integer_timestamp_is_invalid() {
        for bad in ["1614265330.5", "soon", "1e9"] {
            let mut map = svix(ENTRY);
            map.insert("svix-timestamp", HeaderValue::from_static(bad));
            let err = verifier(&[SECRET]).verify(&map, BODY, TS).unwrap_err();
            assert_eq!(err, VerifyError::InvalidTimestamp);
            assert_eq!(err.reason(), "invalid_timestamp");
        }
    }

    #[test]
    fn empty_key_is_rejected() {
        assert_eq!(
            "whsec_".parse::<Key>().unwrap_err(),
            KeyError::Empty("whsec_")
        );
        assert_eq!(
            "whpk_".parse::<Key>().unwrap_err(),
            KeyError::Empty("whpk_")
        );
        assert_eq!("  ".parse::<Key>().unwrap_err(), KeyError::Empty("whsec_"));
    }

    #[test]
    fn bad_base64_is_rejected() {
        let err = "whsec_not*base64".parse::<Key>().unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::Base64 {
                    prefix: "whsec_",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn wrong_ed25519_length_is_rejected() {
        let err = "whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            .parse::<Key>()
            .unwrap_err();
        assert_eq!(
            err,
            KeyError::Length {
                prefix: "whpk_",
                expected: "32",
                actual: 24
            }
        );
        let err = "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            .parse::<Key>()
            .unwrap_err();
        assert!(matches!(
            err,
            KeyError::Length {
                prefix: "whsk_",
                actual: 24,
                ..
            }
        ));
    }

    #[test]
    fn bare_base64_is_an_hmac_key() {
        let bare = key(SECRET.trim_start_matches("whsec_"));
        let v = Verifier::new(vec![bare], DEFAULT_TOLERANCE);
        assert!(v.verify(&svix(ENTRY), BODY, TS).is_ok());
    }

    #[test]
    fn unpadded_and_whitespace_keys_parse() {
        let unpadded = PUBLIC.trim_end_matches('=');
        assert!(verifier(&[unpadded])
            .verify(&svix(ENTRY_V1A), BODY, TS)
            .is_ok());
        assert!(verifier(&[&format!("{SECRET}\n")])
            .verify(&svix(ENTRY), BODY, TS)
            .is_ok());
    }

    #[test]
    fn public_key_cannot_sign() {
        assert_eq!(Signer::new(key(PUBLIC)).unwrap_err(), KeyError::VerifyOnly);
    }

    #[test]
    fn debug_and_masked_do_not_leak() {
        let secret_part = SECRET.trim_start_matches("whsec_");
        let k = key(SECRET);
        assert_eq!(k.masked(), "whsec_MfKQ…(24 bytes)");
        let outputs = [
            format!("{k:?}"),
            format!("{:?}", verifier(&[SECRET, SECRET_2])),
            format!("{:?}", Signer::new(key(SECRET)).unwrap()),
        ];
        for output in outputs {
            assert!(output.contains("whsec_MfKQ…"), "{output}");
            assert!(!output.contains(secret_part), "{output}");
            assert!(!output.contains(&secret_part[..8]), "{output}");
            assert!(!output.contains("C2FVsBQIhrsc"), "{output}");
        }
    }

    #[test]
    fn short_keys_show_no_characters() {
        assert_eq!(key("whsec_c2hvcnQ=").masked(), "whsec_…(5 bytes)");
    }

    #[test]
    fn reasons_are_stable() {
        assert_eq!(VerifyError::StaleTimestamp.reason(), "stale_timestamp");
        assert_eq!(VerifyError::BadSignature.reason(), "bad_signature");
        assert_eq!(VerifyError::UnknownToken.reason(), "unknown_token");
    }

    #[test]
    fn hmac_key_preparation_matches_new_from_slice() {
        for len in [0, 1, 24, 63, 64, 65, 200] {
            let secret: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let ours = hmac_sha256(&secret)
                .chain_update(b"msg")
                .finalize()
                .into_bytes();
            let theirs = <HmacSha256 as Mac>::new_from_slice(&secret)
                .unwrap()
                .chain_update(b"msg")
                .finalize()
                .into_bytes();
            assert_eq!(ours, theirs, "key length {len}");
        }
    }
}
