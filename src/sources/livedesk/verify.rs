//! liveDesk authentication.
//!
//! liveDesk documents no signature, so the webhook URL itself carries a secret token
//! (`/webhooks/livedesk/<token>`) that [`UrlToken`] checks. Recent Chatwoot versions, which liveDesk
//! is built on, also sign deliveries (`X-Chatwoot-Signature: sha256=<hex>` over
//! `{X-Chatwoot-Timestamp}.{raw body}`); [`ChatwootVerifier`] checks that whenever a signing
//! secret is configured. Both report failures as [`VerifyError`], like the ChatBrick verifier.

use std::{fmt, time::Duration};

use axum::http::HeaderMap;
use hmac::Mac;
use subtle::ConstantTimeEq;

use crate::settings::WeakToken;
use crate::signature::{fresh_timestamp, header_text, hmac_sha256, HmacSha256, VerifyError};

/// Header holding `sha256=<hex HMAC>`.
const SIGNATURE_HEADER: &str = "x-chatwoot-signature";
/// Header holding the unix seconds that were signed.
const TIMESTAMP_HEADER: &str = "x-chatwoot-timestamp";
/// What Chatwoot puts before the hex MAC.
const SIGNATURE_PREFIX: &str = "sha256=";

/// The secret path segment of the liveDesk webhook URL, the only authentication liveDesk itself
/// offers.
///
/// Compared in constant time; `Debug` shows only its length.
#[derive(Clone)]
pub struct UrlToken(String);

/// Why a configured URL token cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// An empty token would make the URL guessable; usually an unset variable.
    #[error("the liveDesk URL token is empty")]
    Empty,
    /// The placeholder of an example file (`<openssl rand -hex 24>`), left in.
    #[error("the liveDesk URL token is a placeholder, not a token (it contains `<` or `>`): {GENERATE}")]
    Placeholder,
    /// The token must stay one path segment exactly as written, with no percent-encoding
    /// question; hex, base64url and UUIDs all fit.
    #[error("the liveDesk URL token may contain only ASCII letters, digits, '-' and '_': {GENERATE}")]
    NotUrlSafe,
    /// The token is all that authenticates liveDesk's requests: a short one can be guessed.
    #[error("the liveDesk URL token is too short ({0} characters; at least 16): {GENERATE}")]
    TooShort(usize),
}

/// How to make a good token, for every [`TokenError`] but `Empty`.
const GENERATE: &str = "use a long random value, e.g. `openssl rand -hex 24`";

impl UrlToken {
    /// Accepts a token of at least 16 ASCII letters, digits, `-` and `_`, refusing what is
    /// plainly not one: empty, an example file's placeholder, or short enough to guess.
    pub fn new(token: String) -> Result<Self, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        if token.contains(['<', '>']) {
            return Err(TokenError::Placeholder);
        }
        let url_safe = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if !token.bytes().all(url_safe) {
            return Err(TokenError::NotUrlSafe);
        }
        if let Some(WeakToken::TooShort(len)) = WeakToken::check(&token) {
            return Err(TokenError::TooShort(len));
        }
        Ok(UrlToken(token))
    }

    /// The token as it may be shown (the start-up line's webhook URL): a fingerprint and its
    /// length, e.g. `fingerprint 3f2a, 48 characters`; never a character of it.
    pub fn masked(&self) -> String {
        format!(
            "fingerprint {}, {} characters",
            crate::settings::fingerprint(self.0.as_bytes()),
            self.0.len()
        )
    }

    /// Whether the path segment from a request is this token.
    ///
    /// Constant time with respect to the content; a length mismatch returns early, which reveals
    /// only the length.
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl fmt::Debug for UrlToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UrlToken(<redacted, {} chars>)", self.0.len())
    }
}

/// Verifies (and, for hookline's `send` command, produces) Chatwoot webhook signatures.
///
/// The HMAC key is the secret string's bytes as-is, as Chatwoot uses it. `Debug` shows only the
/// secret's length.
#[derive(Clone)]
pub struct ChatwootVerifier {
    /// HMAC state keyed with the secret, cloned per message.
    mac: HmacSha256,
    /// The secret's length, all `Debug` reveals of it.
    secret_len: usize,
    /// How far `X-Chatwoot-Timestamp` may be from our clock, past or future (inclusive).
    tolerance: Duration,
}

impl ChatwootVerifier {
    /// A verifier for the channel's signing secret, accepting timestamps up to `tolerance` away.
    pub fn new(secret: String, tolerance: Duration) -> Self {
        ChatwootVerifier {
            mac: hmac_sha256(secret.as_bytes()),
            secret_len: secret.len(),
            tolerance,
        }
    }

    /// Authenticates one request from its headers and raw body; `now_unix` is unix seconds.
    ///
    /// Checks both headers are present, the timestamp is fresh, then the MAC (decoded from hex and
    /// compared in constant time). A signature without `sha256=` or with bad hex is a
    /// [`VerifyError::BadSignature`].
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), VerifyError> {
        let signature = header_text(headers, SIGNATURE_HEADER)?;
        let timestamp = header_text(headers, TIMESTAMP_HEADER)?;
        let timestamp = fresh_timestamp(timestamp, now_unix, self.tolerance)?;
        let tag = signature
            .strip_prefix(SIGNATURE_PREFIX)
            .and_then(|hex| hex::decode(hex).ok())
            .ok_or(VerifyError::BadSignature)?;
        self.keyed(timestamp, body)
            .verify_slice(&tag)
            .map_err(|_| VerifyError::BadSignature)
    }

    /// The `X-Chatwoot-Signature` value for a body sent at `timestamp`, so that hookline can act
    /// like liveDesk when testing a deployment.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        let tag = self.keyed(timestamp, body).finalize().into_bytes();
        format!("{SIGNATURE_PREFIX}{}", hex::encode(tag))
    }

    /// The MAC state after feeding `{timestamp}.{body}`.
    fn keyed(&self, timestamp: i64, body: &[u8]) -> HmacSha256 {
        self.mac
            .clone()
            .chain_update(format!("{timestamp}."))
            .chain_update(body)
    }
}

impl fmt::Debug for ChatwootVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatwootVerifier")
            .field(
                "secret",
                &format_args!("<redacted, {} bytes>", self.secret_len),
            )
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::DEFAULT_TOLERANCE;
    use axum::http::HeaderValue;

    const SECRET: &str = "chatwoot-signing-secret-0123";
    const TS: i64 = 1_768_967_324;
    const BODY: &[u8] = br#"{"id":1,"content":"hi","event":"message_created"}"#;

    fn verifier(secret: &str) -> ChatwootVerifier {
        ChatwootVerifier::new(secret.to_owned(), DEFAULT_TOLERANCE)
    }

    fn headers(signature: &str, timestamp: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
        map.insert(TIMESTAMP_HEADER, HeaderValue::from_str(timestamp).unwrap());
        map
    }

    fn signed(secret: &str, body: &[u8]) -> HeaderMap {
        headers(&verifier(secret).sign(TS, body), &TS.to_string())
    }

    #[test]
    fn sign_verify_round_trip() {
        assert_eq!(
            verifier(SECRET).verify(&signed(SECRET, BODY), BODY, TS),
            Ok(())
        );
    }

    #[test]
    fn sign_matches_independent_hmac() {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{TS}.").as_bytes());
        mac.update(BODY);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(verifier(SECRET).sign(TS, BODY), expected);
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let upper = verifier(SECRET)
            .sign(TS, BODY)
            .to_uppercase()
            .replacen("SHA256=", "sha256=", 1);
        assert_eq!(
            verifier(SECRET).verify(&headers(&upper, &TS.to_string()), BODY, TS),
            Ok(())
        );
    }

    #[test]
    fn wrong_secret_is_bad_signature() {
        let map = signed("another-secret-entirely", BODY);
        assert_eq!(
            verifier(SECRET).verify(&map, BODY, TS),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn tampered_body_is_bad_signature() {
        let mut body = BODY.to_vec();
        body[5] ^= 1;
        assert_eq!(
            verifier(SECRET).verify(&signed(SECRET, BODY), &body, TS),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn missing_headers_are_named() {
        for name in [SIGNATURE_HEADER, TIMESTAMP_HEADER] {
            let mut map = signed(SECRET, BODY);
            map.remove(name);
            assert_eq!(
                verifier(SECRET).verify(&map, BODY, TS),
                Err(VerifyError::MissingHeader(name))
            );
        }
    }

    #[test]
    fn stale_and_future_timestamps_are_rejected() {
        let v = verifier(SECRET);
        let map = signed(SECRET, BODY);
        assert_eq!(
            v.verify(&map, BODY, TS + 301),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            v.verify(&map, BODY, TS - 301),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(v.verify(&map, BODY, TS + 300), Ok(()));
    }

    #[test]
    fn non_integer_timestamp_is_invalid() {
        let map = headers(&verifier(SECRET).sign(TS, BODY), "yesterday");
        assert_eq!(
            verifier(SECRET).verify(&map, BODY, TS),
            Err(VerifyError::InvalidTimestamp)
        );
    }

    #[test]
    fn signature_without_prefix_or_bad_hex_is_bad_signature() {
        let good = verifier(SECRET).sign(TS, BODY);
        let bare = good.trim_start_matches(SIGNATURE_PREFIX).to_owned();
        for bad in [
            bare,
            "sha256=zz".to_owned(),
            "sha256=abc".to_owned(),
            "sha1=00".to_owned(),
        ] {
            let map = headers(&bad, &TS.to_string());
            assert_eq!(
                verifier(SECRET).verify(&map, BODY, TS),
                Err(VerifyError::BadSignature),
                "{bad}"
            );
        }
    }

    #[test]
    fn token_matches_only_itself() {
        let token = UrlToken::new("s3cr3t-Token_0123456789".to_owned()).unwrap();
        assert!(token.matches("s3cr3t-Token_0123456789"));
        assert!(!token.matches("s3cr3t-Token_0123456788"));
        assert!(!token.matches("s3cr3t-Token_012345678"));
        assert!(!token.matches("s3cr3t-Token_01234567890"));
        assert!(!token.matches(""));
    }

    #[test]
    fn token_rules() {
        assert_eq!(UrlToken::new(String::new()).unwrap_err(), TokenError::Empty);
        for bad in ["a/b", "a b", "tok%2F", "tök", "a?b"] {
            assert_eq!(
                UrlToken::new(bad.to_owned()).unwrap_err(),
                TokenError::NotUrlSafe,
                "{bad}"
            );
        }
        assert!(UrlToken::new("3f2a9c1e-7b4d-4e2a-9c1e-0123456789ab".to_owned()).is_ok());
        assert_eq!(
            UrlToken::new("<openssl rand -hex 24>".to_owned()).unwrap_err(),
            TokenError::Placeholder
        );
        assert_eq!(
            UrlToken::new("abc".to_owned()).unwrap_err(),
            TokenError::TooShort(3)
        );
        assert!(UrlToken::new("0123456789abcdef".to_owned()).is_ok());
        let advice = TokenError::TooShort(3).to_string();
        assert!(advice.contains("openssl rand -hex 24"), "{advice}");
    }

    #[test]
    fn debug_does_not_leak() {
        let token = UrlToken::new("s3cr3t-Token_0123456789".to_owned()).unwrap();
        let outputs = [format!("{token:?}"), format!("{:?}", verifier(SECRET))];
        for output in outputs {
            assert!(!output.contains("s3cr3t"), "{output}");
            assert!(!output.contains("chatwoot-signing"), "{output}");
            assert!(output.contains("redacted"), "{output}");
        }
    }
}
