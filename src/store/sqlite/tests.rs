//! The SQLite store's tests.

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};

use super::filters::DEAD;
use super::queue::{EXPEDITE, RELEASE_LEASES, SELECT_DUE};
use super::reads::COUNT_OPEN;
use super::rows::DELIVERY_SELECT;
use super::schema::SCHEMA;
use super::{open_connection, SqliteStore, Synchronous};
use crate::envelope::Envelope;
use crate::store::{
    AttemptRecord, DeliveryCounts, DeliveryStart, EventDetail, InsertOutcome, NewDelivery,
    NextStep, Store, StoreError,
};
use chrono::Duration as Age;

fn envelope(provider_id: &str, age: Age) -> Envelope {
    crate::envelope::testing::envelope(
        "chatbrick",
        "default",
        provider_id,
        Utc::now() - age,
        br#"{"type":"store.created","data":{"store":{"id":"s1"}}}"#,
    )
}

fn to(handler: &str) -> Vec<NewDelivery> {
    vec![NewDelivery {
        route: handler.into(),
        handler: handler.into(),
        start: DeliveryStart::Pending,
    }]
}

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, Synchronous::Full, 0).unwrap()
}

async fn deliver_all(store: &SqliteStore, handler: &str) {
    for claimed in store
        .claim(handler, 100, Duration::from_secs(60))
        .await
        .unwrap()
    {
        let attempt = AttemptRecord {
            started_at: Utc::now(),
            duration: Duration::from_millis(1),
            http_status: Some(200),
            error: None,
        };
        store
            .finish(claimed.delivery_id, attempt, NextStep::Delivered)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn duplicates_are_detected_even_within_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (first, second) = (envelope("m1", Age::zero()), envelope("m1", Age::zero()));
    let (a, b) = tokio::join!(
        store.insert(&first, to("log")),
        store.insert(&second, to("log")),
    );
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| *o == InsertOutcome::Duplicate);
    assert!(matches!(outcomes[0], InsertOutcome::Stored { .. }));
    assert_eq!(outcomes[1], InsertOutcome::Duplicate);
    assert_eq!(store.counts().await.unwrap().pending, 1);
}

#[tokio::test]
async fn committed_events_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = open(dir.path());
        let e = envelope("m1", Age::zero());
        store.insert(&e, to("log")).await.unwrap();
        e.id
    };
    let store = open(dir.path());
    let detail = store.event(&id).await.unwrap().expect("still there");
    assert_eq!(detail.summary.status, "pending");
    assert!(detail.body.unwrap().contains("store.created"));
    assert_eq!(
        store
            .insert(&envelope("m1", Age::zero()), to("log"))
            .await
            .unwrap(),
        InsertOutcome::Duplicate
    );
}

#[tokio::test]
async fn prune_keeps_ids_for_dedupe_drops_bodies_and_spares_unfinished_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let day = Duration::from_secs(24 * 3600);
    let ancient = envelope("ancient", Age::days(10));
    let old = envelope("old", Age::days(3));
    let stuck = envelope("stuck", Age::days(10));
    let fresh = envelope("fresh", Age::zero());
    for e in [&ancient, &old, &fresh] {
        store.insert(e, to("log")).await.unwrap();
    }
    deliver_all(&store, "log").await;
    store.insert(&stuck, to("other")).await.unwrap();

    let stats = store.prune(7 * day, day).await.unwrap();
    assert_eq!(
        stats.events_deleted, 1,
        "only the finished event past the dedupe window"
    );
    assert!(store.event(&ancient.id).await.unwrap().is_none());
    let old_detail = store.event(&old.id).await.unwrap().unwrap();
    assert!(old_detail.body.is_none(), "body dropped after retention");
    assert_eq!(
        store.insert(&old, to("log")).await.unwrap(),
        InsertOutcome::Duplicate,
        "its id is still remembered"
    );
    assert!(store
        .event(&fresh.id)
        .await
        .unwrap()
        .unwrap()
        .body
        .is_some());
    let stuck_detail = store.event(&stuck.id).await.unwrap().unwrap();
    assert!(stuck_detail.body.is_some(), "pending work keeps its body");
    let err = store.replay_event(&old.id, Vec::new()).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

#[tokio::test]
async fn expired_leases_are_released_and_fresh_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .insert(&envelope("a", Age::zero()), to("h"))
        .await
        .unwrap();
    store
        .insert(&envelope("b", Age::zero()), to("g"))
        .await
        .unwrap();
    assert_eq!(store.claim("h", 10, Duration::ZERO).await.unwrap().len(), 1);
    assert_eq!(
        store
            .claim("g", 10, Duration::from_secs(600))
            .await
            .unwrap()
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(store.release_leases(true).await.unwrap(), 1);
    let again = store.claim("h", 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2, "the lost attempt counts");
    assert!(store
        .claim("g", 10, Duration::from_secs(60))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.release_leases(false).await.unwrap(), 2);
}

#[test]
fn open_queries_use_the_partial_index() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let conn = open_connection(&SqliteStore::db_path(dir.path())).unwrap();
    let dead_letters = format!("{DELIVERY_SELECT} WHERE {DEAD} ORDER BY d.id DESC LIMIT 100");
    for sql in [
        SELECT_DUE,
        RELEASE_LEASES,
        EXPEDITE,
        COUNT_OPEN,
        &dead_letters,
    ] {
        let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Unbound parameters are NULL, which does not change the plan.
        let mut rows = explain.raw_query();
        let mut plan: Vec<String> = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            plan.push(row.get(3).unwrap());
        }
        assert!(
            plan.iter().any(|step| step.contains("deliveries_open")),
            "{sql}\n{plan:?}"
        );
    }
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
    assert_eq!(version, 3);
}

fn attempt(status: u16, error: Option<&str>) -> AttemptRecord {
    AttemptRecord {
        started_at: Utc::now(),
        duration: Duration::from_millis(3),
        http_status: Some(status),
        error: error.map(str::to_owned),
    }
}

/// Claims the one due delivery of `h` and records `record` with `next` for it.
async fn attempt_once(store: &SqliteStore, record: AttemptRecord, next: NextStep) -> i64 {
    let claimed = store.claim("h", 1, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), 1, "one due delivery");
    let id = claimed[0].delivery_id;
    store.finish(id, record, next).await.unwrap();
    id
}

fn outcomes(detail: &EventDetail) -> Vec<(String, Option<u16>)> {
    detail.deliveries[0]
        .history
        .iter()
        .map(|a| (a.outcome.clone(), a.http_status))
        .collect()
}

fn attempt_rows(dir: &Path) -> i64 {
    let conn = open_connection(&SqliteStore::db_path(dir)).unwrap();
    conn.query_row("SELECT COUNT(*) FROM attempts", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_delivery_done_at_intake_is_committed_delivered_with_its_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let e = envelope("m1", Age::zero());
    let started_at = Utc.timestamp_millis_opt(1_700_000_000_123).unwrap();
    let done = NewDelivery {
        route: "log".into(),
        handler: "log".into(),
        start: DeliveryStart::Delivered(crate::store::SuccessRecord {
            started_at,
            duration: Duration::from_millis(3),
        }),
    };
    store.insert(&e, vec![done]).await.unwrap();

    let detail = store.event(&e.id).await.unwrap().unwrap();
    assert_eq!(detail.summary.status, "delivered");
    let delivery = &detail.deliveries[0];
    assert_eq!(
        (delivery.state.as_str(), delivery.attempts),
        ("delivered", 1)
    );
    assert_eq!(delivery.history.len(), 1);
    let attempt = &delivery.history[0];
    assert_eq!(
        (
            attempt.outcome.as_str(),
            attempt.started_at,
            attempt.duration_ms
        ),
        ("delivered", started_at, 3)
    );
    assert_eq!(attempt_rows(dir.path()), 0, "kept in the delivery's row");
    assert_eq!(store.counts().await.unwrap(), DeliveryCounts::default());
    let due = store
        .claim("log", 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(due.is_empty(), "nothing left to claim");
}

#[tokio::test]
async fn a_success_is_kept_in_its_delivery_and_shown_last_in_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let e = envelope("m1", Age::zero());
    store.insert(&e, to("h")).await.unwrap();
    let failed = attempt(503, Some("busy"));
    attempt_once(&store, failed, NextStep::RetryAt(Utc::now())).await;
    let id = attempt_once(&store, attempt(200, None), NextStep::Delivered).await;

    let detail = store.event(&e.id).await.unwrap().unwrap();
    let expected = vec![
        ("retry".to_string(), Some(503)),
        ("delivered".to_string(), Some(200)),
    ];
    assert_eq!(outcomes(&detail), expected);
    assert_eq!(detail.deliveries[0].state, "delivered");
    assert_eq!(detail.deliveries[0].last_error, None);
    assert_eq!(attempt_rows(dir.path()), 1, "only the failure has a row");

    // A replay moves the success into `attempts`, and the next round records its own.
    store.replay_delivery(id).await.unwrap();
    let replayed = store.event(&e.id).await.unwrap().unwrap();
    assert_eq!(
        outcomes(&replayed),
        expected,
        "history kept across the replay"
    );
    assert_eq!(replayed.deliveries[0].state, "pending");
    attempt_once(&store, attempt(202, None), NextStep::Delivered).await;
    let detail = store.event(&e.id).await.unwrap().unwrap();
    assert_eq!(
        outcomes(&detail),
        vec![
            ("retry".to_string(), Some(503)),
            ("delivered".to_string(), Some(200)),
            ("delivered".to_string(), Some(202)),
        ]
    );
    assert_eq!(attempt_rows(dir.path()), 2);
}

#[tokio::test]
async fn opening_an_inbox_without_success_columns_adds_them_and_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = SqliteStore::db_path(dir.path());
    let e = envelope("m1", Age::zero());
    {
        let store = open(dir.path());
        store.insert(&e, to("h")).await.unwrap();
    }
    {
        // As version 2 left it: the success in `attempts`, no `success_*` columns.
        let conn = open_connection(&path).unwrap();
        conn.execute_batch(
            "UPDATE deliveries SET state = 'delivered';
             INSERT INTO attempts (delivery_id, started_at, duration_ms, outcome, http_status)
                 SELECT id, 0, 5, 'delivered', 200 FROM deliveries;
             ALTER TABLE deliveries DROP COLUMN success_started_at;
             ALTER TABLE deliveries DROP COLUMN success_duration_ms;
             ALTER TABLE deliveries DROP COLUMN success_http_status;
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let store = open(dir.path());
    let detail = store.event(&e.id).await.unwrap().unwrap();
    assert_eq!(
        outcomes(&detail),
        vec![("delivered".to_string(), Some(200))]
    );
    let id = detail.deliveries[0].id;
    store.replay_delivery(id).await.unwrap();
    attempt_once(&store, attempt(200, None), NextStep::Delivered).await;
    let detail = store.event(&e.id).await.unwrap().unwrap();
    assert_eq!(detail.deliveries[0].history.len(), 2);
}

#[tokio::test]
async fn claimed_events_are_read_back_as_they_were_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let original = envelope("m1", Age::zero());
    store.insert(&original, to("log")).await.unwrap();
    let claimed = store
        .claim("log", 1, Duration::from_secs(60))
        .await
        .unwrap();
    let stored = &claimed[0].event;
    assert_eq!(stored.source, original.source.as_str());
    assert_eq!(stored.provider_id, original.provider_id);
    assert_eq!(stored.event_type, "store.created");
    assert_eq!(
        stored.received_at.timestamp_millis(),
        original.received_at.timestamp_millis()
    );
    assert_eq!(stored.body, original.body);
}
