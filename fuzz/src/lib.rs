//! What the fuzz targets share: one input format for the targets that need headers as well as
//! a body, so that seeds stay readable and every target reads them the same way.
//!
//! An input is a header block, an empty line, then the body, like an HTTP request without its
//! request line:
//!
//! ```text
//! svix-id: msg_p5jXN8AQM9LWM0D4loKWxJek
//! svix-timestamp: 1614265330
//! x-fuzz-now: 1614265330
//!
//! {"test": 2432232314}
//! ```
//!
//! Lines are `name: value`; names starting with `x-fuzz-` are controls for the target (the clock,
//! a key, what to sign), everything else becomes a request header. A header that HTTP could not
//! carry (a name or value `http` refuses) is dropped, as a server would have refused the request
//! before hookline saw it. Without an empty line the whole input is the header block.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use hookline::{Decoded, Source};
use serde_json::Value;

/// Prefix of the lines that steer the target instead of becoming headers.
const CONTROL_PREFIX: &[u8] = b"x-fuzz-";

/// One input, split into request headers, controls and body.
#[derive(Debug, Default)]
pub struct Input<'a> {
    /// The request headers, in order, repeated names kept.
    pub headers: HeaderMap,
    /// The `x-fuzz-*` lines: name without the prefix, value.
    controls: Vec<(&'a [u8], &'a [u8])>,
    /// Everything after the first empty line.
    pub body: &'a [u8],
}

impl<'a> Input<'a> {
    /// Splits `data` at the first empty line and reads the header block.
    pub fn parse(data: &'a [u8]) -> Input<'a> {
        let (block, body) = split_body(data);
        let mut input = Input {
            body,
            ..Input::default()
        };
        for line in block.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
            if let Some(control) = strip_prefix_ignore_case(name, CONTROL_PREFIX) {
                input.controls.push((control, value));
            } else if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                input.headers.append(name, value);
            }
        }
        input
    }

    /// The first value of control `name` (`now` for `x-fuzz-now`).
    pub fn control(&self, name: &str) -> Option<&'a [u8]> {
        self.controls
            .iter()
            .find(|(control, _)| control.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| *value)
    }

    /// Every value of control `name`, in order.
    pub fn controls(&self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.controls
            .iter()
            .filter(move |(control, _)| control.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| *value)
    }

    /// Control `name` as text, if it is UTF-8.
    pub fn control_text(&self, name: &str) -> Option<&'a str> {
        self.control(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }
}

/// A header's first value as hookline's verifiers read it: UTF-8, trimmed, not empty.
pub fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|value| std::str::from_utf8(value.as_bytes()).ok())
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// Decodes `body` as intake does for `source`, and checks that the outcome is whole: a typed
/// event (`Other` included) or `Undecodable` with a reason; never a panic. When the body is
/// JSON (bytes that are not UTF-8 replaced), the type decoded or read leniently is the body's own
/// `type_key` string. (The decoders skip the fields they do not read without checking them, so
/// they may read a type from a body that is not quite JSON; then there is nothing to compare.)
pub fn check_decoded(source: Source, body: &[u8], type_key: &str) {
    let sent = serde_json::from_str::<Value>(&String::from_utf8_lossy(body)).ok();
    let sent_type = sent
        .as_ref()
        .map(|value| value.get(type_key).and_then(Value::as_str));
    let (decoded_type, reason) = match source.decode(body) {
        Decoded::Event(event) => {
            let _ = (event.key_ids(), event.personal(), format!("{event:?}"));
            (Some(event.event_type().to_owned()), None)
        }
        Decoded::Undecodable { error, event_type } => (event_type, Some(error)),
    };
    assert!(
        reason.is_none_or(|r| !r.is_empty()),
        "undecodable without a reason"
    );
    if let (Some(sent_type), Some(decoded_type)) = (sent_type, &decoded_type) {
        assert_eq!(
            sent_type,
            Some(decoded_type.as_str()),
            "the type is not the body's"
        );
    }
}

/// The header block and the body: split at the first `\n\n` (or `\r\n\r\n`).
fn split_body(data: &[u8]) -> (&[u8], &[u8]) {
    for (at, window) in data.windows(2).enumerate() {
        if window == b"\n\n" {
            return (&data[..at], &data[at + 2..]);
        }
        if window == b"\n\r" && data.get(at + 2) == Some(&b'\n') {
            return (&data[..at], &data[at + 3..]);
        }
    }
    (data, &[])
}

/// Strips the spaces and tabs that HTTP allows around a header value.
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// `name` without `prefix`, compared without regard to ASCII case.
fn strip_prefix_ignore_case<'n>(name: &'n [u8], prefix: &[u8]) -> Option<&'n [u8]> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &name[prefix.len()..])
}
