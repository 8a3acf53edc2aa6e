//! The liveDesk URL token path: `POST [<base path>]/webhooks/livedesk/<token>` through the public
//! router `hookline serve` answers with (routing, percent-decoding of the segment, the token
//! check, the request layer), and how its access-log line masks the token.
//!
//! Input (see `hookline_fuzz::Input`): controls `x-fuzz-target` (the request target, as on the
//! request line) and `x-fuzz-method` (default `POST`); the other headers and the body go with the
//! request. It is sent to two routers, without and with the base path `/hooks`, both with
//! liveDesk's token and a Chatwoot secret: a request whose token passes is then refused for its
//! signature, which the fuzzer cannot forge, so nothing is ever stored.
//!
//! Checked beyond "no panic": the token check passes exactly for `POST` to the route with the
//! token as its last segment (percent-encoded or not); every request that reached the token
//! check has the segment masked in its logged path.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{Method, Request, Uri};
use hookline::config::Config;
use hookline::fuzzing::{masked_path, public_router_for, secret_paths};
use hookline_fuzz::Input;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// liveDesk's URL token in both routers.
const TOKEN: &str = "s3cr3t-Token_0123456789";
/// The route, after the base path.
const ROUTE: &str = "/webhooks/livedesk/";
/// Answers that say the token passed: what the signature check that follows says.
const PAST_THE_TOKEN: [&str; 4] = [
    "missing_header",
    "invalid_timestamp",
    "stale_timestamp",
    "bad_signature",
];

/// One router under test.
struct Served {
    base_path: &'static str,
    router: axum::Router,
    secret_paths: Vec<&'static str>,
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

static ROUTERS: LazyLock<Vec<Served>> =
    LazyLock::new(|| ["", "/hooks"].into_iter().map(served).collect());

/// A router with liveDesk on, a Chatwoot secret, and its store in a directory of its own under
/// the temporary directory (`fuzz/run` points `TMPDIR` at one it removes afterwards).
fn served(base_path: &'static str) -> Served {
    let mut config = Config::default();
    config.base_path = base_path.to_owned();
    config.sources.livedesk.token = Some(TOKEN.to_owned());
    config.sources.livedesk.secret = Some("chatwoot-signing-secret-0123".to_owned());
    config.data_dir = data_dir(base_path);
    let _ = std::fs::remove_dir_all(&config.data_dir);
    let router = RUNTIME
        .block_on(async { public_router_for(&config) })
        .expect("the public router builds");
    Served {
        base_path,
        router,
        secret_paths: secret_paths(&config),
    }
}

fn data_dir(base_path: &str) -> PathBuf {
    let name = format!(
        "hookline-fuzz-livedesk-path-{}{}",
        std::process::id(),
        base_path.replace('/', "-")
    );
    std::env::temp_dir().join(name)
}

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let Some(Ok(uri)) = input.control("target").map(Uri::try_from) else {
        return;
    };
    let method = match input.control("method") {
        None => Method::POST,
        Some(name) => match Method::from_bytes(name) {
            Ok(method) => method,
            Err(_) => return,
        },
    };
    for served in ROUTERS.iter() {
        let mut request = Request::new(Body::from(input.body.to_vec()));
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = input.headers.clone();
        let reason = RUNTIME.block_on(answer(&served.router, request));
        check(served, &method, uri.path(), reason.as_deref());
    }
});

/// The `error` of the answer's JSON body, if it has one.
async fn answer(router: &axum::Router, request: Request<Body>) -> Option<String> {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
    json.get("error")?.as_str().map(str::to_owned)
}

/// The token passes exactly when it should, and whatever reached the check is masked in logs.
fn check(served: &Served, method: &Method, path: &str, reason: Option<&str>) {
    let passed = reason.is_some_and(|r| PAST_THE_TOKEN.contains(&r));
    let segment = path
        .strip_prefix(served.base_path)
        .and_then(|rest| rest.strip_prefix(ROUTE))
        .filter(|segment| !segment.is_empty() && !segment.contains('/'));
    let expected = *method == Method::POST
        && segment.is_some_and(|segment| percent_decode(segment) == TOKEN.as_bytes());
    assert_eq!(
        passed, expected,
        "{method} {path} under {:?}: {reason:?}",
        served.base_path
    );
    if passed || reason == Some("unknown_token") {
        let segment = segment.expect("only the route checks the token");
        let masked = masked_path(path, &served.secret_paths);
        assert_eq!(
            masked,
            format!("{}***", &path[..path.len() - segment.len()])
        );
    }
}

/// `%XX` sequences decoded, anything else as it is: how a path segment becomes the token.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes
            .get(at + 1..at + 3)
            .filter(|pair| pair.iter().all(u8::is_ascii_hexdigit))
            .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]));
        match (bytes[at], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                at += 3;
            }
            (byte, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    out
}

/// The value of one hex digit.
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}
