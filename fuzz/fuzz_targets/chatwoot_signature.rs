//! liveDesk's Chatwoot signature: `X-Chatwoot-Signature: sha256=<hex>` over
//! `{X-Chatwoot-Timestamp}.{body}`, from arbitrary header bytes and bodies.
//!
//! Input (see `hookline_fuzz::Input`): request headers, then the body. Controls: `x-fuzz-now`
//! (the clock, default the time of the unit tests' vector), `x-fuzz-secret` (the signing secret),
//! `x-fuzz-sign: lower|upper` (replace the signature by the correct one, in lower- or upper-case
//! hex).
//!
//! Checked beyond "no panic": an accepted request has a fresh timestamp and a `sha256=` value;
//! a correctly signed request is refused only for a stale timestamp.
#![no_main]

use axum::http::HeaderValue;
use hookline::livedesk::verify::ChatwootVerifier;
use hookline::signature::{VerifyError, DEFAULT_TOLERANCE};
use hookline_fuzz::{header_text, Input};
use libfuzzer_sys::fuzz_target;

/// The clock when the input does not set one.
const DEFAULT_NOW: i64 = 1_768_967_324;
/// The signing secret when the input does not set one (the unit tests' secret).
const DEFAULT_SECRET: &str = "chatwoot-signing-secret-0123";
/// Chatwoot's header names.
const SIGNATURE: &str = "x-chatwoot-signature";
const TIMESTAMP: &str = "x-chatwoot-timestamp";

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let now = input
        .control_text("now")
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(DEFAULT_NOW);
    let secret = input.control_text("secret").unwrap_or(DEFAULT_SECRET);
    let verifier = ChatwootVerifier::new(secret.to_owned(), DEFAULT_TOLERANCE);
    let timestamp = header_text(&input.headers, TIMESTAMP).and_then(|t| t.parse::<i64>().ok());
    let fresh = timestamp.is_some_and(|t| now.abs_diff(t) <= DEFAULT_TOLERANCE.as_secs());
    if verifier.verify(&input.headers, input.body, now).is_ok() {
        assert!(fresh, "accepted with a timestamp that is not fresh");
        let signature = header_text(&input.headers, SIGNATURE).expect("accepted without one");
        assert!(signature.starts_with("sha256="), "{signature:?}");
    }
    let (Some(case), Some(timestamp)) = (input.control("sign"), timestamp) else {
        return;
    };
    let mut signature = verifier.sign(timestamp, input.body);
    if case == b"upper" {
        signature = format!("sha256={}", signature["sha256=".len()..].to_uppercase());
    }
    let mut headers = input.headers.clone();
    let value = HeaderValue::from_str(&signature).expect("sha256= and hex is a header value");
    headers.insert(SIGNATURE, value);
    match verifier.verify(&headers, input.body, now) {
        Ok(()) => assert!(fresh),
        Err(VerifyError::StaleTimestamp) => assert!(!fresh),
        Err(other) => panic!("a correctly signed request was refused: {other:?}"),
    }
});
