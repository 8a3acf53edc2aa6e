//! Replays: making finished deliveries due again with a fresh retry budget, one delivery, one
//! event (with the deliveries of routes it lacks) or every dead letter a filter matches.

use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use super::error::Failure;
use super::filters::FilterSql;
use super::pool::Connection;
use crate::store::{replayable, EventFilter, NewDelivery, StoreError};

/// Replays one delivery, unless it is in flight or its event's body is gone.
pub(super) async fn replay_delivery(
    conn: &mut Connection,
    delivery_id: i64,
) -> Result<(), Failure> {
    let tx = conn.transaction().await?;
    let state: Option<String> = tx
        .query_opt(
            "SELECT d.state FROM deliveries d JOIN events e ON e.seq = d.event_seq
             WHERE d.id = $1 AND e.body IS NOT NULL
             FOR UPDATE OF d",
            &[&delivery_id],
        )
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    replayable(delivery_id, state.as_deref())?;
    reset_deliveries(&*tx, "WHERE d.id = $1", &[&delivery_id]).await?;
    tx.commit().await?;
    Ok(())
}

/// Replays every finished delivery of an event and creates those of `routes` it lacks;
/// returns how many deliveries it made due.
pub(super) async fn replay_event(
    conn: &mut Connection,
    id: &str,
    routes: &[NewDelivery],
) -> Result<u64, Failure> {
    let tx = conn.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT seq, body IS NOT NULL FROM events WHERE id = $1 FOR SHARE",
            &[&id],
        )
        .await?;
    let Some(row) = row else {
        return Err(StoreError::NotFound(format!("event {id}")).into());
    };
    let (seq, has_body): (i64, bool) = (row.try_get(0)?, row.try_get(1)?);
    if !has_body {
        return Err(StoreError::Conflict(format!(
            "event {id} is past its retention: its body is no longer stored"
        ))
        .into());
    }
    let names: Vec<&str> = routes.iter().map(|r| r.route.as_str()).collect();
    let handlers: Vec<&str> = routes.iter().map(|r| r.handler.as_str()).collect();
    let created = tx
        .execute(
            "INSERT INTO deliveries (event_seq, route, handler, state, due_at, since)
             SELECT $1, r.route, r.handler, 'pending', now(), now()
             FROM unnest($2::text[], $3::text[]) AS r (route, handler)
             ON CONFLICT (event_seq, route) DO NOTHING",
            &[&seq, &names, &handlers],
        )
        .await?;
    let reset = reset_deliveries(
        &*tx,
        "WHERE d.event_seq = $1 AND d.state <> 'pending'",
        &[&seq],
    )
    .await?;
    tx.commit().await?;
    Ok(created + reset)
}

/// Replays the dead letters that match `filter` and still have their event's body.
pub(super) async fn replay_dead(conn: &Connection, filter: &EventFilter) -> Result<u64, Failure> {
    let mut sql = FilterSql::new(filter, true)?;
    sql.and("d.state = 'dead'");
    sql.and("e.body IS NOT NULL");
    reset_deliveries(&***conn, &sql.where_sql(), &sql.params()).await
}

/// Makes the deliveries that `condition` (a `WHERE` clause over `deliveries d` and
/// `events e`) picks, bar those in flight, due now with a fresh budget; returns how many. In
/// the same statement the success of a delivered one moves from its row into `attempts`, so
/// that its history keeps it and the next round can record its own.
async fn reset_deliveries(
    client: &impl GenericClient,
    condition: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, Failure> {
    let sql = format!(
        "WITH chosen AS (
             SELECT d.id FROM deliveries d JOIN events e ON e.seq = d.event_seq
             {condition} AND d.state <> 'inflight'
             FOR UPDATE OF d
         ), kept AS (
             INSERT INTO attempts (delivery_id, started_at, duration_ms, outcome, http_status)
             SELECT id, success_started_at, success_duration_ms, 'delivered',
                    success_http_status
             FROM deliveries
             WHERE id IN (SELECT id FROM chosen) AND success_started_at IS NOT NULL
             ORDER BY id
         )
         UPDATE deliveries SET state = 'pending', due_at = now(), since = now(), attempts = 0,
             lease_until = NULL, success_started_at = NULL, success_duration_ms = NULL,
             success_http_status = NULL
         WHERE id IN (SELECT id FROM chosen)"
    );
    Ok(client.execute(&sql, params).await?)
}
