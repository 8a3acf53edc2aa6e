//! Routes' body conditions (`when = { "conversation.status" = "open" }`): dotted paths looked up in
//! whatever body the sender sent, compared with the configured JSON values.
//!
//! Input (see `hookline_fuzz::Input`): controls, then the body. Controls: `x-fuzz-source`
//! (`chatbrick` or `livedesk`, default `livedesk`), `x-fuzz-when: <dotted.path>=<JSON value>`
//! (repeatable; one condition each), `x-fuzz-events: <glob>,<glob>` (the route's event types).
//!
//! Checked beyond "no panic": a route matches exactly when each of its conditions alone matches;
//! a route without conditions always matches; and a condition made from a path the body really
//! has, with the value found there, matches.
#![no_main]

use std::collections::BTreeMap;

use hookline::config::RouteConfig;
use hookline::fuzzing::Router;
use hookline::{chatbrick, livedesk, Envelope};
use hookline_fuzz::Input;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// How deep the condition made from the body goes.
const MAX_DEPTH: usize = 8;

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let source = match input.control("source") {
        Some(b"chatbrick") => chatbrick::SOURCE,
        _ => livedesk::SOURCE,
    };
    let events: Vec<String> = input
        .control_text("events")
        .map(|list| list.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    // A route's `when` is a table: one value per path. A path given twice keeps its last value,
    // as the route below holds it, and each one-condition route is made from that table too.
    let conditions: BTreeMap<String, Value> = input
        .controls("when")
        .filter_map(|line| {
            let line = std::str::from_utf8(line).ok()?;
            let (path, value) = line.split_once('=')?;
            Some((path.to_owned(), serde_json::from_str(value).ok()?))
        })
        .collect();
    let body = bytes::Bytes::copy_from_slice(input.body);
    let envelope = Envelope::decode(source, "default", "fuzz".into(), chrono::Utc::now(), body);

    let mut routes = vec![route("all", &events, BTreeMap::new())];
    routes.push(route("every", &events, conditions.clone()));
    for (n, (path, value)) in conditions.iter().enumerate() {
        let one = BTreeMap::from([(path.clone(), value.clone())]);
        routes.push(route(&format!("one-{n}"), &events, one));
    }
    let from_body = serde_json::from_slice::<Value>(input.body)
        .ok()
        .and_then(|value| condition_from(&value));
    if let Some((path, value)) = &from_body {
        let found = BTreeMap::from([(path.clone(), value.clone())]);
        routes.push(route("from-body", &events, found));
    }
    let matched: Vec<String> = Router::new(&routes)
        .deliveries(&envelope)
        .into_iter()
        .map(|delivery| delivery.route)
        .collect();

    let all = matched.iter().any(|name| name == "all");
    let every = matched.iter().any(|name| name == "every");
    let each = (0..conditions.len()).all(|n| matched.contains(&format!("one-{n}")));
    assert_eq!(
        every,
        all && each,
        "a route's conditions are not all of them: {matched:?}"
    );
    if from_body.is_some() {
        assert_eq!(
            matched.contains(&"from-body".to_owned()),
            all,
            "{from_body:?}"
        );
    }
});

/// A route to the `log` handler with these event globs and conditions.
fn route(name: &str, events: &[String], when: BTreeMap<String, Value>) -> RouteConfig {
    let mut config = RouteConfig::everything("log");
    config.name = Some(name.to_owned());
    config.events = events.to_vec();
    config.when = when;
    config
}

/// A dotted path that the body has, with the value there: first keys of objects (those without
/// a `.`), first items of arrays, down to a value that is neither or to `MAX_DEPTH`.
fn condition_from(body: &Value) -> Option<(String, Value)> {
    let mut path = Vec::new();
    let mut value = body;
    while path.len() < MAX_DEPTH {
        let next = match value {
            Value::Object(map) => map
                .iter()
                .find(|(key, _)| !key.contains('.'))
                .map(|(key, inner)| (key.clone(), inner)),
            Value::Array(items) => items.first().map(|inner| ("0".to_owned(), inner)),
            _ => None,
        };
        let Some((segment, inner)) = next else {
            break;
        };
        path.push(segment);
        value = inner;
    }
    (!path.is_empty()).then(|| (path.join("."), value.clone()))
}
