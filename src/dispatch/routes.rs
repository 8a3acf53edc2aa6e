//! Routes: which stored events go to which handler.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wildmatch::WildMatch;

use crate::envelope::{Envelope, KeyIds};
use crate::store::{DeliveryStart, NewDelivery, OrderKey};

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
    /// Deliver in order per key: `conversation`, `contact`, or a dotted body path
    /// (`data.contact.id`); unordered when absent (docs/ordering.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<String>,
    /// What a dead letter of an ordered route does to its key.
    #[serde(default)]
    pub on_dead: OnDead,
}

/// What the dead letter at the head of a key does to the later deliveries of that key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDead {
    /// They wait until it is replayed (and done) or skipped: nothing goes out of order.
    #[default]
    Block,
    /// The next one goes.
    Skip,
}

/// What an ordered route orders by.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OrderBy {
    /// The conversation the event is about, as its provider says ([`KeyIds::conversation`]).
    Conversation,
    /// The contact the event is about ([`KeyIds::contact`]); for an event about a store and no
    /// contact (ChatBrick's store events), the store, as `store:<id>`.
    Contact,
    /// A field of the body: path segments.
    Path(Vec<String>),
}

impl OrderBy {
    fn new(setting: &str) -> OrderBy {
        match setting {
            "conversation" => OrderBy::Conversation,
            "contact" => OrderBy::Contact,
            path => OrderBy::Path(path.split('.').map(str::to_owned).collect()),
        }
    }

    /// The event's key; `None` when it has none (it then goes unordered). A body field counts
    /// when it is a string or a number.
    fn key(&self, envelope: &Envelope, body: Option<&Value>) -> Option<String> {
        match self {
            OrderBy::Conversation => envelope.key_ids().conversation,
            OrderBy::Contact => contact_key(envelope.key_ids()),
            OrderBy::Path(path) => match lookup(body?, path)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            },
        }
    }
}

/// The contact an event is about, or the store for an event about a store alone.
fn contact_key(ids: KeyIds) -> Option<String> {
    ids.contact
        .or_else(|| ids.store.map(|store| format!("store:{store}")))
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
            order_by: None,
            on_dead: OnDead::Block,
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
    /// What it orders by, when it is ordered.
    order_by: Option<OrderBy>,
    /// Whether a dead letter blocks its key.
    blocks: bool,
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
            order_by: config.order_by.as_deref().map(OrderBy::new),
            blocks: config.on_dead == OnDead::Block,
        }
    }

    /// Whether its body conditions or its key need the parsed body.
    fn reads_body(&self) -> bool {
        !self.when.is_empty() || matches!(self.order_by, Some(OrderBy::Path(_)))
    }

    /// The key a delivery of this route holds for the event, when the route is ordered and the
    /// event has one.
    fn order(&self, envelope: &Envelope, body: Option<&Value>) -> Option<OrderKey> {
        let key = self.order_by.as_ref()?.key(envelope, body)?;
        Some(OrderKey {
            key,
            blocks: self.blocks,
        })
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

    /// One delivery per route that matches the event, with its key where the route is
    /// ordered. The body is parsed only when a route with conditions or a body key gets that
    /// far.
    pub fn deliveries(&self, envelope: &Envelope) -> Vec<NewDelivery> {
        let mut parsed: Option<Option<Value>> = None;
        let mut deliveries = Vec::new();
        for route in self.routes.iter().filter(|r| r.matches_metadata(envelope)) {
            let body = if route.reads_body() {
                parsed
                    .get_or_insert_with(|| serde_json::from_slice(&envelope.body).ok())
                    .as_ref()
            } else {
                None
            };
            if route.matches_body(body) {
                deliveries.push(NewDelivery {
                    route: route.name.clone(),
                    handler: route.handler.clone(),
                    start: DeliveryStart::Pending,
                    order: route.order(envelope, body),
                });
            }
        }
        deliveries
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

    /// The key of each delivery the router makes for `envelope`.
    fn keys(router: &Router, envelope: &Envelope) -> Vec<Option<(String, bool)>> {
        router
            .deliveries(envelope)
            .into_iter()
            .map(|d| d.order.map(|o| (o.key, o.blocks)))
            .collect()
    }

    #[test]
    fn ordered_routes_key_deliveries_by_a_body_field_or_leave_them_unordered() {
        let router = Router::new(&[
            route("by-contact-field", |r| {
                r.order_by = Some("data.contact.id".into());
                r.on_dead = OnDead::Skip;
            }),
            route("by-number", |r| r.order_by = Some("data.n".into())),
            route("unordered", |_| {}),
        ]);
        let e = envelope(
            "chatbrick",
            "default",
            r#"{"type":"x","data":{"contact":{"id":"c7"},"n":42}}"#,
        );
        let expected = vec![
            Some(("c7".to_string(), false)),
            Some(("42".to_string(), true)),
            None,
        ];
        assert_eq!(keys(&router, &e), expected);
        let keyless = envelope("chatbrick", "default", r#"{"type":"x","data":{"n":null}}"#);
        assert_eq!(keys(&router, &keyless), vec![None, None, None]);
        let garbage = envelope("chatbrick", "default", "not json");
        assert_eq!(keys(&router, &garbage), vec![None, None, None]);
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
