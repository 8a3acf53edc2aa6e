//! What ordered routes read and do beside the claim (which holds back the deliveries that do
//! not head their key: see `queue::CLAIM`): letting the next delivery of a key go when its head
//! is done, the keys a dead letter blocks, skipping one, and what metrics read. Every query
//! walks `deliveries_ordered`, the open ordered deliveries.
//!
//! As in the SQLite store (`store/sqlite/order.rs`), `held` takes the deliveries waiting behind
//! the head of their key out of what a claim reads, and the claim's own condition stays what
//! guarantees the order. Replicas add a race the single SQLite writer does not have: an insert
//! that sees the head still open, and a finish that lets the next one go without seeing that
//! insert, would leave the new delivery held for good. Both therefore hold the key's
//! transaction-scoped advisory lock ([`lock_keys`]) and read after taking it: whichever comes
//! second sees what the first committed.

use deadpool_postgres::Transaction;

use super::error::Failure;
use super::pool::Connection;
use crate::store::{BlockedKey, OrderedRoute, StoreError};

/// Takes, in a stable order, the advisory locks of the keys that routes `$1` and keys `$2`
/// (arrays of the same length; a null key is skipped) name, until the transaction ends. A
/// key's lock is the pair (`0x686c`, hash of route and key): the two-number form, which never
/// meets the one-number locks of migrations and pruning.
pub(super) const LOCK_KEYS: &str = "
SELECT pg_advisory_xact_lock(26732, h) FROM (
    SELECT DISTINCT hashtext(r || chr(31) || k) AS h
    FROM unnest($1::text[], $2::text[]) AS x (r, k)
    WHERE k IS NOT NULL
    ORDER BY h) AS keys";

/// Lets the first delivery of route `$1` and key `$2` that holds the key go, if it is held.
const LET_NEXT_GO: &str = "
UPDATE deliveries SET held = false WHERE held AND id = (
    SELECT n.id FROM deliveries n
    WHERE n.route = $1 AND n.order_key = $2
      AND n.state <> 'delivered' AND (n.state <> 'dead' OR n.order_blocks)
    ORDER BY n.event_seq LIMIT 1)";

/// The route and key of delivery `delivery_id`, if it exists and holds a key.
pub(super) async fn key_of(
    tx: &Transaction<'_>,
    delivery_id: i64,
) -> Result<Option<(String, String)>, Failure> {
    let statement = tx
        .prepare_cached(
            "SELECT route, order_key FROM deliveries WHERE id = $1 AND order_key IS NOT NULL",
        )
        .await?;
    let row = tx.query_opt(&statement, &[&delivery_id]).await?;
    Ok(match row {
        Some(row) => Some((row.try_get(0)?, row.try_get(1)?)),
        None => None,
    })
}

/// Takes the locks of `keys` (route, key) in `tx` (see [`LOCK_KEYS`]).
pub(super) async fn lock_keys(
    tx: &Transaction<'_>,
    keys: &[(String, String)],
) -> Result<(), Failure> {
    let routes: Vec<&str> = keys.iter().map(|(r, _)| r.as_str()).collect();
    let names: Vec<Option<&str>> = keys.iter().map(|(_, k)| Some(k.as_str())).collect();
    let statement = tx.prepare_cached(LOCK_KEYS).await?;
    tx.execute(&statement, &[&routes, &names]).await?;
    Ok(())
}

/// With the key's lock held in `tx`: lets the next delivery of `route` and `key` go if it now
/// heads the key.
pub(super) async fn let_next_go(
    tx: &Transaction<'_>,
    route: &str,
    key: &str,
) -> Result<(), Failure> {
    let statement = tx.prepare_cached(LET_NEXT_GO).await?;
    tx.execute(&statement, &[&route, &key]).await?;
    Ok(())
}

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

/// Makes dead letter `delivery_id` stop holding back its key, and lets the next one go.
pub(super) async fn skip_blocked(conn: &mut Connection, delivery_id: i64) -> Result<(), Failure> {
    let not_found = || {
        Failure::from(StoreError::NotFound(format!(
            "dead letter {delivery_id} holding back its key"
        )))
    };
    let tx = conn.transaction().await?;
    let Some(key) = key_of(&tx, delivery_id).await? else {
        return Err(not_found());
    };
    lock_keys(&tx, std::slice::from_ref(&key)).await?;
    let statement = tx
        .prepare_cached(
            "UPDATE deliveries SET order_blocks = false
             WHERE id = $1 AND state = 'dead' AND order_blocks",
        )
        .await?;
    if tx.execute(&statement, &[&delivery_id]).await? == 0 {
        return Err(not_found());
    }
    let_next_go(&tx, &key.0, &key.1).await?;
    tx.commit().await?;
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
