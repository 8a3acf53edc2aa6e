//! What the store keeps for ordered routes: the key each delivery of such a route holds, the
//! keys held back by a dead letter, and what metrics read about them.
//!
//! A delivery with an [`OrderKey`] is claimed only when no earlier delivery (by event `seq`)
//! of the same route and key is still open: pending, in flight, or dead while it
//! [blocks](OrderKey::blocks). docs/ordering.md has the guarantee and what it costs.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The key a delivery of an ordered route holds, and what its dead letter does to the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderKey {
    /// The key: the conversation, contact or body field the route orders by.
    pub key: String,
    /// Whether, once dead, it keeps holding back later deliveries of its key until it is
    /// replayed (and done) or skipped (`on_dead = "block"`); `false` lets the next one go
    /// (`on_dead = "skip"`).
    pub blocks: bool,
}

/// A key of an ordered route that a dead letter holds back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockedKey {
    /// The route.
    pub route: String,
    /// The key.
    pub key: String,
    /// The dead delivery that holds it back: replay it, or skip it.
    pub head: i64,
    /// That delivery's event.
    pub event_id: String,
    /// When that delivery died.
    pub since: DateTime<Utc>,
    /// Deliveries of the key waiting behind it.
    pub waiting: u64,
}

/// What metrics read about one ordered route with open work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderedRoute {
    /// The route.
    pub route: String,
    /// Keys held back by a dead letter.
    pub blocked_keys: u64,
    /// Since when (its creation or replay) the oldest delivery held back by an earlier one of
    /// its key has waited; `None` when none is held back.
    pub oldest_held_since: Option<DateTime<Utc>>,
}
