//! Routes: which stored events go to which handler.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wildmatch::WildMatch;

use crate::envelope::Envelope;
use crate::store::{DeliveryStart, NewDelivery};

/// One route: which events go to which handler.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name shown in the inspector and metrics; defaults to the handler name.
    #[serde(default)]
    pub name: Option<String>,
    /// Name of a handler in `[handlers]` (or `log`).
    pub handler: String,
    /// `chatbrick` or `livedesk`; any when absent.
    #[serde(default)]
    pub source: Option<String>,
    /// Endpoint names (`default` for the unnamed one); any when empty.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Event type globs such as `contact.connection.*`; any when empty.
    #[serde(default)]
    pub events: Vec<String>,
    /// Body fields that must equal the given JSON values; dotted paths (`conversation.status`).
    #[serde(default)]
    pub when: BTreeMap<String, serde_json::Value>,
}

impl RouteConfig {
    /// A route that sends every event to `handler`.
    pub fn everything(handler: &str) -> RouteConfig {
        RouteConfig {
            name: None,
            handler: handler.into(),
            source: None,
            endpoints: Vec::new(),
            events: Vec::new(),
            when: BTreeMap::new(),
        }
    }

    /// The route's name: its own, or its handler's.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.handler)
    }
}

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Name recorded on each delivery.
    pub name: String,
    /// Handler that runs the deliveries.
    pub handler: String,
    /// Only events of this source (by name).
    source: Option<String>,
    /// Only events received on these endpoints (any when empty).
    endpoints: Vec<String>,
    /// Event type globs (any when empty).
    events: Vec<WildMatch>,
    /// Body fields that must equal these values: (path segments, value).
    when: Vec<(Vec<String>, Value)>,
}

impl Route {
    /// Compiles a route from its configuration (already validated).
    pub fn new(config: &RouteConfig) -> Route {
        Route {
            name: config.name().to_owned(),
            handler: config.handler.clone(),
            source: config.source.clone(),
            endpoints: config.endpoints.clone(),
            events: config.events.iter().map(|g| WildMatch::new(g)).collect(),
            when: config
                .when
                .iter()
                .map(|(path, value)| (path.split('.').map(str::to_owned).collect(), value.clone()))
                .collect(),
        }
    }

    /// Whether the event's metadata matches (everything but the body conditions).
    fn matches_metadata(&self, envelope: &Envelope) -> bool {
        self.source
            .as_deref()
            .is_none_or(|s| s == envelope.source.as_str())
            && (self.endpoints.is_empty() || self.endpoints.contains(&envelope.endpoint))
            && (self.events.is_empty()
                || self.events.iter().any(|g| g.matches(&envelope.event_type)))
    }

    /// Whether the parsed body satisfies every condition.
    fn matches_body(&self, body: Option<&Value>) -> bool {
        self.when.iter().all(|(path, expected)| {
            body.and_then(|b| lookup(b, path))
                .is_some_and(|actual| actual == expected)
        })
    }
}

/// Follows a dotted path through objects (and arrays, by index).
fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// All routes, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Compiles the configured routes.
    pub fn new(configs: &[RouteConfig]) -> Router {
        Router {
            routes: configs.iter().map(Route::new).collect(),
        }
    }

    /// One delivery per route that matches the event. The body is parsed only when a route
    /// with conditions gets that far.
    pub fn deliveries(&self, envelope: &Envelope) -> Vec<NewDelivery> {
        let mut body: Option<Option<Value>> = None;
        self.routes
            .iter()
            .filter(|route| route.matches_metadata(envelope))
            .filter(|route| {
                route.when.is_empty()
                    || route.matches_body(
                        body.get_or_insert_with(|| serde_json::from_slice(&envelope.body).ok())
                            .as_ref(),
                    )
            })
            .map(|route| NewDelivery {
                route: route.name.clone(),
                handler: route.handler.clone(),
                start: DeliveryStart::Pending,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn envelope(source: &'static str, endpoint: &str, body: &'static str) -> Envelope {
        crate::envelope::testing::envelope(
            source,
            endpoint,
            "id",
            chrono::Utc::now(),
            body.as_bytes(),
        )
    }

    fn route(name: &str, f: impl FnOnce(&mut RouteConfig)) -> RouteConfig {
        let mut config = RouteConfig::everything("log");
        config.name = Some(name.into());
        f(&mut config);
        config
    }

    fn names(router: &Router, envelope: &Envelope) -> Vec<String> {
        router
            .deliveries(envelope)
            .into_iter()
            .map(|d| d.route)
            .collect()
    }

    #[test]
    fn globs_sources_endpoints_and_conditions() {
        let mut when = BTreeMap::new();
        when.insert("message_type".to_string(), Value::from("outgoing"));
        when.insert("private".to_string(), Value::from(false));
        let router = Router::new(&[
            route("all", |_| {}),
            route("connections", |r| {
                r.events = vec!["contact.connection.*".into()]
            }),
            route("orders-endpoint", |r| {
                r.source = Some("chatbrick".into());
                r.endpoints = vec!["orders".into()];
            }),
            route("outgoing", |r| {
                r.source = Some("livedesk".into());
                r.when = when;
            }),
        ]);
        let connected = envelope(
            "chatbrick",
            "default",
            r#"{"type":"contact.connection.connected","data":{}}"#,
        );
        assert_eq!(names(&router, &connected), vec!["all", "connections"]);
        let store = envelope(
            "chatbrick",
            "orders",
            r#"{"type":"store.created","data":{}}"#,
        );
        assert_eq!(names(&router, &store), vec!["all", "orders-endpoint"]);
        let outgoing = envelope(
            "livedesk",
            "default",
            r#"{"message_type":"outgoing","private":false,"event":"message_created"}"#,
        );
        assert_eq!(names(&router, &outgoing), vec!["all", "outgoing"]);
        let private = envelope(
            "livedesk",
            "default",
            r#"{"message_type":"outgoing","private":true,"event":"message_created"}"#,
        );
        assert_eq!(names(&router, &private), vec!["all"]);
    }

    #[test]
    fn nested_paths_and_unparsable_bodies() {
        let mut when = BTreeMap::new();
        when.insert("conversation.status".to_string(), Value::from("open"));
        let router = Router::new(&[route("open", |r| r.when = when)]);
        let open = envelope(
            "livedesk",
            "default",
            r#"{"conversation":{"status":"open"},"event":"message_created"}"#,
        );
        assert_eq!(names(&router, &open), vec!["open"]);
        let garbage = envelope("livedesk", "default", "not json");
        assert!(names(&router, &garbage).is_empty());
    }
}
