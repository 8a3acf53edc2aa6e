//! Standard Webhooks verification (`svix-*` and `webhook-*` headers, `v1` and `v1a` entries):
//! the header parsing, the timestamp, the entry list and the key text, from arbitrary bytes.
//!
//! Input (see `hookline_fuzz::Input`): request headers, then the body. Controls:
//! `x-fuzz-now` (the clock, default the first test vector's time), `x-fuzz-key` (one more key's
//! text, parsed like a configured secret), `x-fuzz-sign: v1|v1a` (also sign the request
//! correctly and check the verdict changes as it must).
//!
//! Checked beyond "no panic": an accepted request's id is one of the id headers and its timestamp
//! within the tolerance; adding a correct entry to the signature header turns "bad signature"
//! into acceptance and changes no other verdict.
#![no_main]

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue};
use hookline::signature::{Key, Signer, Verified, Verifier, VerifyError, DEFAULT_TOLERANCE};
use hookline_fuzz::{header_text, Input};
use libfuzzer_sys::fuzz_target;

/// The clock when the input does not set one: the time of the first test vector in
/// docs/providers.md.
const DEFAULT_NOW: i64 = 1_614_265_330;

/// The keys of docs/providers.md's test vectors, and an ed25519 secret key that signs `v1a`.
const KEYS: [&str; 4] = [
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=",
    "whsk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
];

static PARSED: LazyLock<Vec<Key>> =
    LazyLock::new(|| KEYS.iter().map(|k| k.parse().expect("test key")).collect());

/// The two header families: (id, timestamp, signature).
const FAMILIES: [(&str, &str, &str); 2] = [
    ("svix-id", "svix-timestamp", "svix-signature"),
    ("webhook-id", "webhook-timestamp", "webhook-signature"),
];

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let now = input
        .control_text("now")
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(DEFAULT_NOW);
    let mut keys = PARSED.clone();
    if let Some(text) = input.control_text("key") {
        if let Ok(key) = text.parse::<Key>() {
            let _ = Signer::new(key.clone()).map(|s| s.sign("id", now, input.body));
            keys.push(key);
        }
    }
    let verifier = Verifier::new(keys, DEFAULT_TOLERANCE);
    let verdict = verifier.verify(&input.headers, input.body, now);
    if let Ok(verified) = &verdict {
        check_accepted(verified, &input.headers, now);
    }
    let signer = match input.control("sign") {
        Some(b"v1") => Signer::new(PARSED[0].clone()).expect("whsec_ key signs"),
        Some(b"v1a") => Signer::new(PARSED[3].clone()).expect("whsk_ key signs"),
        _ => return,
    };
    let signed = sign_both_families(&signer, &input.headers, input.body);
    let again = verifier.verify(&signed, input.body, now);
    match verdict {
        Ok(_) | Err(VerifyError::BadSignature) => {
            assert!(
                again.is_ok(),
                "a correctly signed request was refused: {again:?}"
            )
        }
        Err(refused) => assert_eq!(again, Err(refused)),
    }
});

/// What an accepted request must look like.
fn check_accepted(verified: &Verified, headers: &HeaderMap, now: i64) {
    let ids: Vec<&str> = FAMILIES
        .iter()
        .filter_map(|(id, _, _)| header_text(headers, id))
        .collect();
    assert!(
        ids.contains(&verified.id.as_str()),
        "accepted id {:?} is not an id header",
        verified.id
    );
    assert!(now.abs_diff(verified.timestamp) <= DEFAULT_TOLERANCE.as_secs());
}

/// The headers with a correct entry appended to each family's signature header that has text,
/// signed with that family's id and timestamp, so that whichever family the verifier reads
/// carries a correct entry among the sender's.
fn sign_both_families(signer: &Signer, headers: &HeaderMap, body: &[u8]) -> HeaderMap {
    let mut entries = Vec::new();
    for (id, timestamp, _) in FAMILIES {
        let id = header_text(headers, id);
        let timestamp = header_text(headers, timestamp).and_then(|t| t.parse::<i64>().ok());
        if let (Some(id), Some(timestamp)) = (id, timestamp) {
            entries.push(signer.sign(id, timestamp, body));
        }
    }
    let mut signed = headers.clone();
    for (_, _, signature) in FAMILIES {
        let Some(sent) = header_text(headers, signature) else {
            continue;
        };
        let value = format!("{sent} {}", entries.join(" "));
        let value =
            HeaderValue::from_bytes(value.as_bytes()).expect("a header value plus base64 is one");
        if let Some(first) = signed.get_mut(signature) {
            *first = value;
        }
    }
    signed
}
