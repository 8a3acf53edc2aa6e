//! The SQLite store's own tests: its query plans, its schema migrations and where it keeps
//! attempts. Every rule the store shares with other implementations is in
//! [`crate::store::conformance`], which runs against it at the end of this file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeDelta, Utc};

use super::filters::{status_clause, DEAD};
use super::order::{BLOCKED_KEYS, LET_NEXT_GO_AFTER, ORDERED_ROUTES};
use super::queue::{EXPEDITE, RELEASE_LEASES, SELECT_DUE};
use super::reads::{COUNT_OPEN, OLDEST_WAITING};
use super::rows::DELIVERY_SELECT;
use super::schema::{self, SCHEMA};
use super::{checkpoint, open_connection, SqliteStore, Synchronous};
use crate::envelope::Envelope;
use crate::store::conformance::order::keyed;
use crate::store::conformance::{
    attempt, attempt_once, event, outcomes, route, stored, to, Fixture,
};
use crate::store::{DeliveryStart, InsertOutcome, NextStep, Store, SuccessRecord};

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, Synchronous::Full, 0).unwrap()
}

fn attempt_rows(dir: &Path) -> i64 {
    let conn = open_connection(&SqliteStore::db_path(dir)).unwrap();
    conn.query_row("SELECT COUNT(*) FROM attempts", [], |r| r.get(0))
        .unwrap()
}

/// A fresh inbox in a temporary directory of its own, for one conformance rule.
struct Fresh(tempfile::TempDir);

#[async_trait]
impl Fixture for Fresh {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(open(self.0.path()))
    }
}

/// Every rule of the store, against SQLite.
mod conformance {
    use super::Fresh;

    crate::store_conformance!(Fresh(tempfile::tempdir().unwrap()));
}

#[test]
fn open_queries_use_the_partial_index() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let conn = open_connection(&SqliteStore::db_path(dir.path())).unwrap();
    let dead_letters = format!("{DELIVERY_SELECT} WHERE {DEAD} ORDER BY d.id DESC LIMIT 100");
    let status = |name| {
        format!(
            "SELECT e.seq FROM events e WHERE {}",
            status_clause(name).unwrap()
        )
    };
    for sql in [
        SELECT_DUE,
        RELEASE_LEASES,
        EXPEDITE,
        COUNT_OPEN,
        OLDEST_WAITING,
        &dead_letters,
        &status("dead"),
        &status("pending"),
    ] {
        // Unbound parameters are NULL, which does not change the plan.
        let plan = plan(&conn, sql);
        assert!(
            plan.iter().any(|step| step.contains("deliveries_open")),
            "{sql}\n{plan:?}"
        );
    }
}

/// The plan of `sql` as `EXPLAIN QUERY PLAN` gives it, one step per line.
fn plan(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let mut rows = explain.raw_query();
    let mut plan = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        plan.push(row.get(3).unwrap());
    }
    plan
}

/// Whether a delivery heads its key is found through `deliveries_ordered`, not by walking
/// the route's deliveries.
#[test]
fn ordered_queries_use_their_index() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let conn = open_connection(&SqliteStore::db_path(dir.path())).unwrap();
    for sql in [SELECT_DUE, BLOCKED_KEYS, ORDERED_ROUTES, LET_NEXT_GO_AFTER] {
        let plan = plan(&conn, sql);
        assert!(
            plan.iter().any(|step| step.contains("deliveries_ordered")),
            "{sql}\n{plan:?}"
        );
    }
}

/// Stores `count` events, each with one delivery of route `r` holding `key`; returns their
/// delivery ids.
async fn insert_keyed(store: &SqliteStore, key: &str, count: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let e = event(&format!("{key}{n}"), TimeDelta::zero());
        let outcome = store.insert(&e, vec![keyed("r", Some(key), true)]).await;
        ids.push(stored(outcome.unwrap())[0]);
    }
    ids
}

/// The ids of the deliveries in `dir`'s inbox that are held back behind their key's head.
fn held(dir: &Path) -> Vec<i64> {
    let conn = open_connection(&SqliteStore::db_path(dir)).unwrap();
    let mut stmt = conn
        .prepare("SELECT id FROM deliveries WHERE held ORDER BY id")
        .unwrap();
    let ids = stmt.query_map([], |r| r.get(0)).unwrap();
    ids.collect::<Result<_, _>>().unwrap()
}

/// Deliveries written behind an open one of their key are held back, out of the claim's
/// range, and let go one at a time as each head is done.
#[tokio::test]
async fn deliveries_behind_the_head_of_their_key_are_held_until_it_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let ids = insert_keyed(&store, "a", 4).await;
    insert_keyed(&store, "b", 1).await;
    assert_eq!(held(dir.path()), ids[1..].to_vec());
    for n in 0..4 {
        let claimed = store.claim("h", 10, Duration::from_secs(60)).await.unwrap();
        assert!(claimed.iter().any(|c| c.delivery_id == ids[n]), "{n}");
        assert_eq!(held(dir.path()), ids[n + 1..].to_vec());
        let done = attempt(200, None);
        store
            .finish(ids[n], done, NextStep::Delivered)
            .await
            .unwrap();
        assert_eq!(held(dir.path()), ids[(n + 2).min(4)..].to_vec(), "{n}");
    }
}

/// An inbox of version 5 gets `held` in its queue index, and its deliveries waiting behind
/// the head of their key are held back.
#[tokio::test]
async fn opening_an_inbox_without_held_holds_back_what_waits_behind_a_head() {
    let dir = tempfile::tempdir().unwrap();
    let ids = insert_keyed(&open(dir.path()), "a", 3).await;
    let conn = open_connection(&SqliteStore::db_path(dir.path())).unwrap();
    conn.execute_batch(
        "DROP INDEX deliveries_open;
         ALTER TABLE deliveries DROP COLUMN held;
         CREATE INDEX deliveries_open ON deliveries(state, handler, due_at)
             WHERE state <> 'delivered';
         PRAGMA user_version = 5;",
    )
    .unwrap();
    drop(conn);
    let store = open(dir.path());
    assert_eq!(held(dir.path()), ids[1..].to_vec());
    let conn = open_connection(&SqliteStore::db_path(dir.path())).unwrap();
    let plan = plan(&conn, SELECT_DUE);
    assert!(plan.iter().any(|s| s.contains("held=?")), "{plan:?}");
    let claimed = store.claim("h", 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery_id, ids[0]);
}

/// An inbox in `dir` holding `events` (each with one delivery to `h`), then rewritten by
/// `downgrade` as an older hookline would have left it.
async fn made_older(dir: &Path, events: &[&Envelope], downgrade: &str) {
    {
        let store = open(dir);
        for e in events {
            store.insert(e, to("h")).await.unwrap();
        }
    }
    let conn = open_connection(&SqliteStore::db_path(dir)).unwrap();
    conn.execute_batch(downgrade).unwrap();
}

/// An inbox of version 4 gets the order columns and index; its deliveries stay unordered.
#[tokio::test]
async fn opening_an_inbox_without_order_columns_adds_them() {
    let dir = tempfile::tempdir().unwrap();
    let e = event("m1", TimeDelta::zero());
    made_older(
        dir.path(),
        &[&e],
        "DROP INDEX deliveries_ordered;
         ALTER TABLE deliveries DROP COLUMN order_key;
         ALTER TABLE deliveries DROP COLUMN order_blocks;
         PRAGMA user_version = 4;",
    )
    .await;
    for _ in 0..2 {
        let store = open(dir.path());
        assert!(store.blocked_keys().await.unwrap().is_empty());
        store.claim("h", 10, Duration::from_secs(60)).await.unwrap();
    }
    let conn = open_connection(&SqliteStore::db_path(dir.path())).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::VERSION);
    let ordered: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM deliveries WHERE order_key IS NULL AND state = 'inflight'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ordered, 1, "claimed once, unordered");
}

#[test]
fn opening_an_older_inbox_replaces_the_full_delivery_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = SqliteStore::db_path(dir.path());
    {
        let conn = open_connection(&path).unwrap();
        conn.execute_batch(&SCHEMA.replace("DROP INDEX IF EXISTS deliveries_due;", ""))
            .unwrap();
        conn.execute_batch(
            "CREATE INDEX deliveries_due ON deliveries(state, handler, due_at);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    drop(open(dir.path()));
    let conn = open_connection(&path).unwrap();
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        indexes.contains(&"deliveries_open".to_string()),
        "{indexes:?}"
    );
    assert!(
        !indexes.contains(&"deliveries_due".to_string()),
        "{indexes:?}"
    );
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::VERSION);
}

/// The rule itself is the conformance suite's
/// `a_delivery_done_at_intake_is_committed_delivered_with_its_attempt`.
#[tokio::test]
async fn a_success_at_intake_is_kept_in_its_delivery_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let success = SuccessRecord {
        started_at: Utc::now(),
        duration: Duration::from_millis(3),
    };
    let done = route("log", "log", DeliveryStart::Delivered(success));
    let e = event("m1", TimeDelta::zero());
    store.insert(&e, vec![done]).await.unwrap();
    assert_eq!(
        store.event(&e.id).await.unwrap().unwrap().deliveries[0]
            .history
            .len(),
        1
    );
    assert_eq!(attempt_rows(dir.path()), 0, "kept in the delivery's row");
}

/// The rule itself is the conformance suite's
/// `a_success_is_shown_last_in_the_history_and_kept_by_a_replay`.
#[tokio::test]
async fn a_success_is_kept_in_its_delivery_row_until_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .insert(&event("m1", TimeDelta::zero()), to("h"))
        .await
        .unwrap();
    let failed = attempt(503, Some("busy"));
    attempt_once(&store, "h", failed, NextStep::RetryAt(Utc::now())).await;
    let id = attempt_once(&store, "h", attempt(200, None), NextStep::Delivered).await;
    assert_eq!(attempt_rows(dir.path()), 1, "only the failure has a row");

    // A replay moves the success into `attempts`, and the next round records its own.
    store.replay_delivery(id).await.unwrap();
    attempt_once(&store, "h", attempt(202, None), NextStep::Delivered).await;
    assert_eq!(attempt_rows(dir.path()), 2);
}

#[tokio::test]
async fn opening_an_inbox_without_success_columns_adds_them_and_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let e = event("m1", TimeDelta::zero());
    // As version 2 left it: the success in `attempts`, no `success_*` columns.
    made_older(
        dir.path(),
        &[&e],
        "UPDATE deliveries SET state = 'delivered';
         INSERT INTO attempts (delivery_id, started_at, duration_ms, outcome, http_status)
             SELECT id, 0, 5, 'delivered', 200 FROM deliveries;
         ALTER TABLE deliveries DROP COLUMN success_started_at;
         ALTER TABLE deliveries DROP COLUMN success_duration_ms;
         ALTER TABLE deliveries DROP COLUMN success_http_status;
         PRAGMA user_version = 2;",
    )
    .await;
    let store = open(dir.path());
    let detail = store.event(&e.id).await.unwrap().unwrap();
    assert_eq!(
        outcomes(&detail),
        vec![("delivered".to_string(), Some(200))]
    );
    let id = detail.deliveries[0].id;
    store.replay_delivery(id).await.unwrap();
    attempt_once(&store, "h", attempt(200, None), NextStep::Delivered).await;
    let detail = store.event(&e.id).await.unwrap().unwrap();
    assert_eq!(detail.deliveries[0].history.len(), 2);
}

#[tokio::test]
async fn opening_an_inbox_with_unique_event_ids_moves_them_to_the_dedupe_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = SqliteStore::db_path(dir.path());
    let (first, second) = (
        event("m1", TimeDelta::zero()),
        event("m2", TimeDelta::zero()),
    );
    // As version 3 left it: the ids in a UNIQUE index of `events`, no `event_ids*`.
    made_older(
        dir.path(),
        &[&first, &second],
        "CREATE TABLE events_v3 (
             seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
             endpoint TEXT NOT NULL, provider_id TEXT NOT NULL, event_type TEXT NOT NULL,
             received_at INTEGER NOT NULL, decode_error TEXT, body BLOB);
         INSERT INTO events_v3
             SELECT seq, id, source, endpoint, provider_id, event_type, received_at,
                    decode_error, body FROM events;
         DROP TABLE events;
         ALTER TABLE events_v3 RENAME TO events;
         CREATE INDEX events_received ON events(received_at);
         DROP TABLE event_ids;
         DROP TABLE event_ids_new;
         DROP TABLE event_minutes;
         PRAGMA user_version = 3;",
    )
    .await;
    let store = open(dir.path());
    let detail = store
        .event(&first.id)
        .await
        .unwrap()
        .expect("found by its id");
    assert_eq!(detail.deliveries.len(), 1);
    // What the inspector reads is added too: the events already stored are counted.
    let activity = store
        .activity(Utc::now() - TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(activity.iter().map(|m| m.events).sum::<u64>(), 2);
    assert_eq!(
        store.insert(&first, to("h")).await.unwrap(),
        InsertOutcome::Duplicate
    );
    let third = event("m3", TimeDelta::zero());
    assert!(matches!(
        store.insert(&third, to("h")).await.unwrap(),
        InsertOutcome::Stored { .. }
    ));
    drop(store);
    let conn = open_connection(&path).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT COUNT(*) FROM event_ids"),
        2,
        "the old ids, merged"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM event_ids_new"),
        1,
        "the new one"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'sqlite_autoindex_events%'"),
        0
    );
    assert_eq!(count("PRAGMA user_version"), schema::VERSION);
}

/// Size in bytes of the store's database file plus `suffix` (`""`, `"-wal"`), 0 if absent.
fn db_file_size(dir: &std::path::Path, suffix: &str) -> u64 {
    let file = format!("{}{suffix}", SqliteStore::db_path(dir).display());
    std::fs::metadata(file).map(|m| m.len()).unwrap_or(0)
}

/// Stores events `m{from}`.. with 64 KiB bodies: 17 WAL frames each.
async fn insert_large(store: &SqliteStore, from: usize, count: usize) {
    let body = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
    for n in from..from + count {
        let e = event(&format!("m{n}"), TimeDelta::zero());
        let e = Envelope::restore(
            e.source,
            e.endpoint,
            e.provider_id,
            e.event_type,
            e.received_at,
            None,
            body.clone(),
        );
        store.insert(&e, Vec::new()).await.unwrap();
    }
}

/// A WAL far below `CHECKPOINT_AT` is copied into the database file step by step (`checkpoint`),
/// so that no single sync of the database file has the whole WAL's pages to write.
#[tokio::test]
async fn the_wal_is_copied_in_steps_long_before_it_must_start_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Synchronous::Normal, 0).unwrap();
    let size = |suffix: &str| db_file_size(dir.path(), suffix);
    // 180 events of 17 frames: three steps and a half of WAL.
    insert_large(&store, 0, 180).await;
    let step = u64::from(checkpoint::STEP) * 4096;
    let threshold = u64::from(checkpoint::CHECKPOINT_AT) * 4096;
    assert!(size("-wal") > 3 * step, "{} bytes of WAL", size("-wal"));
    assert!(size("-wal") < threshold, "{} bytes of WAL", size("-wal"));
    // The steps run on the checkpointer's thread: wait for what they copied to appear.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while size("") < 2 * step && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        size("") >= 2 * step,
        "{} bytes copied into the database file",
        size("")
    );
}

/// Checkpoints run beside the writer (`checkpoint`): once the WAL holds more than
/// `CHECKPOINT_AT` frames, its pages are copied into the database file and the WAL starts over,
/// so that inserting more stops growing it.
#[tokio::test]
async fn a_wal_past_the_checkpoint_threshold_is_copied_and_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Synchronous::Normal, 0).unwrap();
    let size = |suffix: &str| db_file_size(dir.path(), suffix);
    // A few thousand events of 17 frames fill the WAL past the threshold.
    let threshold = u64::from(checkpoint::CHECKPOINT_AT) * 4096;
    insert_large(&store, 0, 1200).await;
    let mut sent = 1200;
    assert!(size("-wal") > threshold, "{} bytes of WAL", size("-wal"));
    // Every further round that finds the WAL no larger shows it started over; without
    // checkpoints each round of 200 events would grow it by 13 MiB.
    let mut rounds = 0;
    loop {
        let before = size("-wal");
        insert_large(&store, sent, 200).await;
        sent += 200;
        rounds += 1;
        if size("-wal") == before {
            break;
        }
        assert!(rounds < 50, "the WAL keeps growing: {} bytes", size("-wal"));
    }
    assert!(size("") > threshold / 2, "copied into the database file");
}
