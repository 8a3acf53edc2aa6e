//! hookline's Standard Webhooks verifier against the official libraries: messages signed by
//! Svix's `svix` and the `standardwebhooks` Python packages (random keys in every configured form,
//! ids, timestamps and bodies; `tests/signature_differential.py` signs them) are accepted, and
//! each one with a single byte flipped anywhere in its id, timestamp, signature or body is
//! refused: every byte of the three headers in turn, and bytes of the body at random, each with
//! a random mask. About 90,000 cases in all.
//!
//! The Python packages are installed by `.ci/install-deps` (which `.ci/run` calls) at pinned
//! versions into its tools directory; without them this test fails and says so.

use std::path::PathBuf;
use std::process::Command;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use hookline::signature::{Key, Verifier, DEFAULT_TOLERANCE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

/// Signed messages. Each is checked as sent, then with each byte of its id, timestamp and
/// signature flipped in turn, and with `BODY_FLIPS` bytes of its body flipped one at a time.
const MESSAGES: usize = 1_000;
/// Body bytes flipped per message, at random places.
const BODY_FLIPS: usize = 8;
/// Fixed so that a failure can be reproduced.
const SEED: u64 = 19;

/// One message as a library signed it.
#[derive(Debug, Deserialize)]
struct Signed {
    /// `svix` or `standardwebhooks`.
    library: String,
    /// The key as an operator would configure it.
    secret: String,
    id: String,
    timestamp: i64,
    body: String,
    /// The signature header's value, as the library produced it.
    signature: String,
}

/// The parts of a request that are signed or carry the signature, as bytes on the wire.
#[derive(Clone)]
struct Request {
    /// Header names, in the order of the first three fields.
    names: [&'static str; 3],
    /// Id, timestamp, signature (header values) and body.
    fields: [Vec<u8>; 4],
}

/// What each field is called in failure messages.
const FIELDS: [&str; 4] = ["id", "timestamp", "signature", "body"];

impl Request {
    fn of(signed: &Signed) -> Request {
        let names = match signed.library.as_str() {
            "svix" => ["svix-id", "svix-timestamp", "svix-signature"],
            _ => ["webhook-id", "webhook-timestamp", "webhook-signature"],
        };
        let fields = [
            signed.id.clone().into_bytes(),
            signed.timestamp.to_string().into_bytes(),
            signed.signature.clone().into_bytes(),
            signed.body.clone().into_bytes(),
        ];
        Request { names, fields }
    }

    /// The headers, or `None` when a value could not be sent in HTTP.
    fn headers(&self) -> Option<HeaderMap> {
        let mut headers = HeaderMap::new();
        for (name, value) in self.names.iter().zip(&self.fields) {
            let value = HeaderValue::from_bytes(value).ok()?;
            headers.insert(HeaderName::from_static(name), value);
        }
        Some(headers)
    }

    /// The request with byte `at` of `field` XORed with a random non-zero mask, chosen again
    /// until the request can still be sent, and what was flipped.
    fn flipped(&self, field: usize, at: usize, rng: &mut StdRng) -> (Request, String) {
        loop {
            let mut request = self.clone();
            let mask = rng.gen_range(1..=255u8);
            request.fields[field][at] ^= mask;
            if request.headers().is_some() {
                let what = format!("{} byte {at} ^ {mask:#04x}", FIELDS[field]);
                return (request, what);
            }
        }
    }

    /// Where to flip: every byte of the headers, `BODY_FLIPS` random bytes of the body.
    fn places(&self, rng: &mut StdRng) -> Vec<(usize, usize)> {
        let mut places: Vec<(usize, usize)> = (0..3)
            .flat_map(|field| (0..self.fields[field].len()).map(move |at| (field, at)))
            .collect();
        let body_len = self.fields[3].len();
        if body_len > 0 {
            places.extend((0..BODY_FLIPS).map(|_| (3, rng.gen_range(0..body_len))));
        }
        places
    }
}

/// The tools directory of `.ci/install-deps`.
fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HOOKLINE_CI_TOOLS") {
        return dir.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
    cache.join("hookline-ci")
}

/// `count` messages signed by the Python libraries.
fn signed_by_libraries(count: usize) -> Vec<Signed> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/signature_differential.py"
    );
    let output = Command::new("python3")
        .arg(script)
        .arg(count.to_string())
        .arg(SEED.to_string())
        .env("PYTHONPATH", tools_dir().join("python"))
        .output()
        .expect("python3 runs (.ci/install-deps installs it)");
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("JSON lines")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one signed message per line"))
        .collect()
}

#[test]
fn official_libraries_signatures_are_accepted_and_any_flipped_byte_is_refused() {
    let messages = signed_by_libraries(MESSAGES);
    assert_eq!(messages.len(), MESSAGES);
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut cases = 0;
    for signed in &messages {
        let key: Key = signed
            .secret
            .parse()
            .expect("the library's secret is a key");
        let verifier = Verifier::new(vec![key], DEFAULT_TOLERANCE);
        let now = signed.timestamp + rng.gen_range(-300..=300);
        let request = Request::of(signed);
        let headers = request
            .headers()
            .expect("the library's headers can be sent");
        let body = &request.fields[3];
        let verified = verifier
            .verify(&headers, body, now)
            .unwrap_or_else(|e| panic!("{signed:?} refused: {e}"));
        assert_eq!(verified.id, signed.id);
        cases += 1;
        for (field, at) in request.places(&mut rng) {
            let (flipped, what) = request.flipped(field, at, &mut rng);
            let headers = flipped.headers().expect("flipped() keeps it sendable");
            let verdict = verifier.verify(&headers, &flipped.fields[3], now);
            assert!(verdict.is_err(), "{signed:?} with {what} was accepted");
            cases += 1;
        }
    }
    assert!(cases >= 10_000, "only {cases} cases");
    eprintln!("{cases} cases");
}
