//! What ordered routes read and do beside the claim (which holds back the deliveries that do
//! not head their key: see `queue::SELECT_DUE`): holding back a new delivery that does not head
//! its key and letting the next one go when a head is done, the keys a dead letter blocks,
//! skipping one, and what metrics read. Every query walks `deliveries_ordered`, the open
//! ordered deliveries.
//!
//! `held` takes the deliveries waiting behind the head of their key out of the range that a
//! claim reads (`deliveries_open` has it before `due_at`), so that a key with thousands
//! waiting slows neither its own claims nor those of other keys. It is set when a delivery is
//! written behind an open one of its key ([`held_back`]) and cleared for the next one of the
//! key whenever its head is done, dies without blocking, is skipped or is pruned
//! ([`let_next_go`]). The claim's own condition stays what guarantees the order: `held` only
//! saves it the walk. The store has one writer, so nothing comes between a head being done and
//! the next one being let go.

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

/// Whether a new delivery of `route` and `key` is held back: an open delivery of the key that
/// holds it back exists (any existing one is of an earlier event).
pub(super) fn held_back(tx: &Transaction<'_>, route: &str, key: &str) -> Result<bool, Failure> {
    let held = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM deliveries p WHERE p.route = ?1 AND p.order_key = ?2
                 AND p.state <> 'delivered' AND (p.state <> 'dead' OR p.order_blocks))",
        )?
        .query_row(params![route, key], |r| r.get(0))?;
    Ok(held)
}

/// After delivery `delivery_id` is done, dead or skipped: lets the next delivery of its key go
/// if it now heads the key. Nothing for an unordered delivery, or while its key has a head.
/// One statement (the key is read in it), as it runs after every attempt.
pub(super) fn let_next_go_after(tx: &Transaction<'_>, delivery_id: i64) -> Result<(), Failure> {
    tx.prepare_cached(LET_NEXT_GO_AFTER)?
        .execute([delivery_id])?;
    Ok(())
}

/// See [`let_next_go_after`]: the first delivery of `?1`'s route and key that holds the key,
/// found through `deliveries_ordered`, un-held if it is held.
pub(super) const LET_NEXT_GO_AFTER: &str = "
UPDATE deliveries SET held = 0 WHERE held AND id = (
    SELECT n.id FROM deliveries d JOIN deliveries n
        ON n.route = d.route AND n.order_key = d.order_key
    WHERE d.id = ?1 AND n.state <> 'delivered' AND (n.state <> 'dead' OR n.order_blocks)
    ORDER BY n.event_seq LIMIT 1)";

/// Lets the first delivery of `route` and `key` that holds the key go, if it is held back.
pub(super) fn let_next_go(tx: &Transaction<'_>, route: &str, key: &str) -> Result<(), Failure> {
    tx.prepare_cached(
        "UPDATE deliveries SET held = 0 WHERE held AND id = (
             SELECT n.id FROM deliveries n WHERE n.route = ?1 AND n.order_key = ?2
                 AND n.state <> 'delivered' AND (n.state <> 'dead' OR n.order_blocks)
             ORDER BY n.event_seq LIMIT 1)",
    )?
    .execute(params![route, key])?;
    Ok(())
}

/// The keys that the dead letters of event `seq` block: those whose next delivery
/// [`let_next_go`] must let go once pruning has deleted them.
pub(super) fn keys_blocked_by_event(
    tx: &Transaction<'_>,
    seq: i64,
) -> Result<Vec<(String, String)>, Failure> {
    let mut stmt = tx.prepare_cached(
        "SELECT route, order_key FROM deliveries
         WHERE event_seq = ?1 AND state = 'dead' AND order_blocks AND order_key IS NOT NULL",
    )?;
    let keys = stmt.query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(keys.collect::<Result<_, _>>()?)
}

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
    let_next_go_after(tx, delivery_id)
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
