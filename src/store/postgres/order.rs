//! What ordered routes read and do beside the claim (which holds back the deliveries that do
//! not head their key: see `queue::CLAIM`): the keys a dead letter blocks, skipping one, and
//! what metrics read. Every query walks `deliveries_ordered`, the open ordered deliveries.

use super::error::Failure;
use super::pool::Connection;
use crate::store::{BlockedKey, OrderedRoute, StoreError};

/// Dead letters `d` that block their key and head it: nothing earlier of the key is open.
const BLOCKING_HEADS: &str = "
    d.state = 'dead' AND d.order_blocks AND d.order_key IS NOT NULL
    AND NOT EXISTS (
        SELECT 1 FROM deliveries p
        WHERE p.route = d.route AND p.order_key = d.order_key AND p.event_seq < d.event_seq
          AND p.state <> 'delivered' AND (p.state <> 'dead' OR p.order_blocks))";

/// The keys that dead letters block, oldest first, with how many deliveries wait behind each.
pub(super) async fn blocked_keys(conn: &Connection) -> Result<Vec<BlockedKey>, Failure> {
    let sql = format!(
        "SELECT d.route, d.order_key, d.id, e.id, d.due_at,
             (SELECT count(*) FROM deliveries w
              WHERE w.route = d.route AND w.order_key = d.order_key
                AND w.event_seq > d.event_seq AND w.state <> 'delivered')
         FROM deliveries d JOIN events e ON e.seq = d.event_seq
         WHERE {BLOCKING_HEADS}
         ORDER BY d.due_at, d.id LIMIT 1000"
    );
    let statement = conn.prepare_cached(&sql).await?;
    conn.query(&statement, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(BlockedKey {
                route: r.try_get(0)?,
                key: r.try_get(1)?,
                head: r.try_get(2)?,
                event_id: r.try_get(3)?,
                since: r.try_get(4)?,
                waiting: r.try_get::<_, i64>(5)?.max(0) as u64,
            })
        })
        .collect()
}

/// Makes dead letter `delivery_id` stop holding back its key.
pub(super) async fn skip_blocked(conn: &Connection, delivery_id: i64) -> Result<(), Failure> {
    let statement = conn
        .prepare_cached(
            "UPDATE deliveries SET order_blocks = false
             WHERE id = $1 AND state = 'dead' AND order_key IS NOT NULL AND order_blocks",
        )
        .await?;
    if conn.execute(&statement, &[&delivery_id]).await? == 0 {
        return Err(StoreError::NotFound(format!(
            "dead letter {delivery_id} holding back its key"
        ))
        .into());
    }
    Ok(())
}

/// Per ordered route: the keys dead letters block, and the oldest delivery held back by an
/// earlier one of its key.
pub(super) async fn ordered_routes(conn: &Connection) -> Result<Vec<OrderedRoute>, Failure> {
    let sql = format!(
        "SELECT route, sum(blocked)::int8, min(held_since) FROM (
             SELECT d.route, 1 AS blocked, NULL::timestamptz AS held_since
             FROM deliveries d WHERE {BLOCKING_HEADS}
             UNION ALL
             SELECT d.route, 0, d.since FROM deliveries d
             WHERE d.state = 'pending' AND d.order_key IS NOT NULL AND EXISTS (
                 SELECT 1 FROM deliveries p
                 WHERE p.route = d.route AND p.order_key = d.order_key
                   AND p.event_seq < d.event_seq AND p.state <> 'delivered'
                   AND (p.state <> 'dead' OR p.order_blocks))
         ) ordered GROUP BY route ORDER BY route"
    );
    let statement = conn.prepare_cached(&sql).await?;
    conn.query(&statement, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(OrderedRoute {
                route: r.try_get(0)?,
                blocked_keys: r.try_get::<_, i64>(1)?.max(0) as u64,
                oldest_held_since: r.try_get(2)?,
            })
        })
        .collect()
}
