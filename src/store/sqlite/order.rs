//! What ordered routes read and do beside the claim (which holds back the deliveries that do
//! not head their key: see `queue::SELECT_DUE`): the keys a dead letter blocks, skipping one,
//! and what metrics read. Every query walks `deliveries_ordered`, the open ordered deliveries.

use rusqlite::{params, Connection, Transaction};

use super::error::Failure;
use super::millis::from_ms;
use super::schema::{earlier_open, open_delivery};
use crate::store::{BlockedKey, OrderedRoute, StoreError};

/// Dead letters `d` that block their key and head it: nothing earlier of the key is open.
macro_rules! blocking_heads {
    () => {
        concat!(
            "d.state = 'dead' AND d.order_blocks AND d.order_key IS NOT NULL AND ",
            open_delivery!(),
            " AND NOT EXISTS (",
            earlier_open!(),
            ")"
        )
    };
}

/// The keys that dead letters block, oldest first, with how many deliveries wait behind each.
pub(super) const BLOCKED_KEYS: &str = concat!(
    "SELECT d.route, d.order_key, d.id, e.id, d.due_at,
         (SELECT COUNT(*) FROM deliveries w WHERE w.route = d.route AND w.order_key = d.order_key
              AND w.event_seq > d.event_seq AND w.state <> 'delivered')
     FROM deliveries d JOIN events e ON e.seq = d.event_seq
     WHERE ",
    blocking_heads!(),
    " ORDER BY d.due_at, d.id LIMIT 1000"
);

/// Per ordered route: the keys dead letters block, and the oldest delivery held back by an
/// earlier one of its key.
pub(super) const ORDERED_ROUTES: &str = concat!(
    "SELECT route, SUM(blocked), MIN(held_since) FROM (
         SELECT d.route AS route, 1 AS blocked, NULL AS held_since FROM deliveries d WHERE ",
    blocking_heads!(),
    " UNION ALL
         SELECT d.route, 0, d.since FROM deliveries d
         WHERE d.state = 'pending' AND d.order_key IS NOT NULL AND ",
    open_delivery!(),
    " AND EXISTS (",
    earlier_open!(),
    ")) GROUP BY route ORDER BY route"
);

/// See [`BLOCKED_KEYS`].
pub(super) fn blocked_keys(conn: &Connection) -> Result<Vec<BlockedKey>, Failure> {
    let mut stmt = conn.prepare_cached(BLOCKED_KEYS)?;
    let rows = stmt.query_map([], |r| {
        Ok(BlockedKey {
            route: r.get(0)?,
            key: r.get(1)?,
            head: r.get(2)?,
            event_id: r.get(3)?,
            since: from_ms(r.get(4)?),
            waiting: r.get::<_, i64>(5)?.max(0) as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Makes dead letter `delivery_id` stop holding back its key.
pub(super) fn skip_blocked(tx: &Transaction<'_>, delivery_id: i64) -> Result<(), Failure> {
    let changed = tx
        .prepare_cached(
            "UPDATE deliveries SET order_blocks = 0
             WHERE id = ?1 AND state = 'dead' AND order_key IS NOT NULL AND order_blocks",
        )?
        .execute(params![delivery_id])?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!(
            "dead letter {delivery_id} holding back its key"
        ))
        .into());
    }
    Ok(())
}

/// See [`ORDERED_ROUTES`].
pub(super) fn ordered_routes(conn: &Connection) -> Result<Vec<OrderedRoute>, Failure> {
    let mut stmt = conn.prepare_cached(ORDERED_ROUTES)?;
    let rows = stmt.query_map([], |r| {
        Ok(OrderedRoute {
            route: r.get(0)?,
            blocked_keys: r.get::<_, i64>(1)?.max(0) as u64,
            oldest_held_since: r.get::<_, Option<i64>>(2)?.map(from_ms),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
