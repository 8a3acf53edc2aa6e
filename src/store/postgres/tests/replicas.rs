//! Several replicas on one database: one inbox, one dedupe, claims that never overlap, leases
//! that outlive the replica that took them, and notices of due work that reach every replica.

use std::collections::HashSet;
use std::time::Duration;

use chrono::TimeDelta;
use futures_util::future::join_all;
use tokio::sync::broadcast::Receiver;

use super::{open, open_fresh, PostgresStore};
use crate::store::conformance::{event, insert_pending, route, stored, to, LEASE};
use crate::store::{DeliveryStart, DueWork, EventFilter, InsertOutcome, Leases, Store};

/// How long a notice may take to arrive before the test gives up (it is not a timing claim:
/// notices arrive in milliseconds).
const PATIENCE: Duration = Duration::from_secs(10);

/// Waits for a notice naming `handler`; returns the other notices that came first.
async fn notice_for(notices: &mut Receiver<DueWork>, handler: &str) -> Vec<DueWork> {
    let wanted = DueWork::Handler(handler.into());
    let mut before = Vec::new();
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            match notices.recv().await.expect("notices flow") {
                notice if notice == wanted => return,
                other => before.push(other),
            }
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "no notice for {handler} within {PATIENCE:?}: {before:?}"
    );
    before
}

/// Claims every due delivery of `h`, a few at a time, until none is left; returns their ids.
async fn drain(store: &PostgresStore) -> Vec<i64> {
    let mut mine = Vec::new();
    loop {
        let claimed = store.claim("h", 7, LEASE).await.unwrap();
        if claimed.is_empty() {
            return mine;
        }
        mine.extend(claimed.into_iter().map(|c| c.delivery_id));
    }
}

#[tokio::test]
async fn an_event_retried_on_another_replica_is_a_duplicate_and_both_list_it_once() {
    let (a, url) = open_fresh().await;
    let b = open(&url).await;
    let e = event("m1", TimeDelta::zero());
    stored(a.insert(&e, to("h")).await.unwrap());
    let again = event("m1", TimeDelta::zero());
    assert_eq!(
        b.insert(&again, to("h")).await.unwrap(),
        InsertOutcome::Duplicate
    );
    for replica in [&a, &b] {
        let listed = replica.list_events(EventFilter::default()).await.unwrap();
        let ids: Vec<_> = listed.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, [e.id.as_str()]);
        assert_eq!(replica.counts().await.unwrap().pending, 1);
    }
}

/// Two replicas that insert the same events at once, in opposite orders, store each once:
/// their batches lock ids in one order, so they never deadlock either.
#[tokio::test]
async fn replicas_inserting_the_same_events_at_once_store_each_once() {
    let (a, url) = open_fresh().await;
    let b = open(&url).await;
    let events: Vec<_> = (0..200)
        .map(|n| event(&format!("m{n}"), TimeDelta::zero()))
        .collect();
    let forward = join_all(events.iter().map(|e| a.insert(e, to("h"))));
    let backward = join_all(events.iter().rev().map(|e| b.insert(e, to("h"))));
    let (forward, backward) = tokio::join!(forward, backward);
    let stored = forward
        .into_iter()
        .chain(backward)
        .filter(|o| matches!(o.as_ref().unwrap(), InsertOutcome::Stored { .. }))
        .count();
    assert_eq!(stored, 200);
    assert_eq!(a.counts().await.unwrap().pending, 200);
}

#[tokio::test]
async fn replicas_claiming_at_once_never_get_the_same_delivery() {
    let (a, url) = open_fresh().await;
    let b = open(&url).await;
    let mut all = HashSet::new();
    for n in 0..150 {
        all.insert(insert_pending(&a, &format!("m{n}"), "h").await);
    }
    let (by_a, by_b) = tokio::join!(drain(&a), drain(&b));
    let (set_a, set_b): (HashSet<_>, HashSet<_>) = (
        by_a.iter().copied().collect(),
        by_b.iter().copied().collect(),
    );
    assert_eq!(set_a.len() + set_b.len(), 150, "each claimed once");
    assert!(set_a.is_disjoint(&set_b));
    assert_eq!(&set_a | &set_b, all);
}

/// A replica that dies mid-delivery leaves its lease: another replica's start-up does not take
/// it while it is fresh, and once it expires the delivery runs again there, same event.
#[tokio::test]
async fn a_delivery_of_a_replica_that_died_runs_again_on_another_once_its_lease_expires() {
    let (a, url) = open_fresh().await;
    let e = event("m1", TimeDelta::zero());
    let handed_over = route("h", "h", DeliveryStart::Claimed(Duration::from_secs(2)));
    stored(a.insert(&e, vec![handed_over]).await.unwrap());
    drop(a);

    let b = open(&url).await;
    assert_eq!(b.release_leases(Leases::LeftAtStart).await.unwrap(), 0);
    assert!(b.claim("h", 10, LEASE).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(b.release_leases(Leases::Expired).await.unwrap(), 1);
    let again = b.claim("h", 10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    let detail = b.event(&e.id).await.unwrap().unwrap();
    assert_eq!(detail.deliveries[0].id, again[0].delivery_id);
}

/// Work that one replica commits pending, expedites or replays is announced to every replica,
/// so that whichever has a free slot picks it up at once.
#[tokio::test]
async fn work_made_due_on_one_replica_is_announced_to_the_others() {
    let (a, url) = open_fresh().await;
    let b = open(&url).await;
    let mut notices = b.due_work().expect("a shared store announces work");
    // Notices sent before a replica listens reach it as "any handler" when it starts to.
    super::eventually("the replica listens", async || {
        b.is_available().then_some(())
    })
    .await;

    insert_pending(&a, "m1", "pending-handler").await;
    notice_for(&mut notices, "pending-handler").await;

    let busy = route("r", "busy", DeliveryStart::Claimed(LEASE));
    a.insert(&event("m2", TimeDelta::zero()), vec![busy])
        .await
        .unwrap();
    insert_pending(&a, "m3", "later").await;
    let before = notice_for(&mut notices, "later").await;
    let busy = DueWork::Handler("busy".into());
    assert!(
        !before.contains(&busy),
        "a delivery in flight is nobody else's work"
    );

    let id = a.claim("later", 1, LEASE).await.unwrap()[0].delivery_id;
    let failure = crate::store::conformance::attempt(503, Some("busy"));
    let later = crate::store::NextStep::RetryAt(chrono::Utc::now() + TimeDelta::hours(1));
    a.finish(id, failure, later).await.unwrap();
    assert_eq!(a.expedite("later").await.unwrap(), 1);
    notice_for(&mut notices, "later").await;

    let dead = crate::store::conformance::attempt(500, None);
    let claimed = a.claim("later", 1, LEASE).await.unwrap();
    a.finish(claimed[0].delivery_id, dead, crate::store::NextStep::Dead)
        .await
        .unwrap();
    a.replay_delivery(id).await.unwrap();
    notice_for(&mut notices, "later").await;
}

/// Pruning runs on one replica at a time: while another holds the pruning lock, a pass does
/// nothing.
#[tokio::test]
async fn a_pass_finds_another_replicas_pruning_running_and_does_nothing() {
    let (a, url) = open_fresh().await;
    let ancient = event("ancient", TimeDelta::days(30));
    a.insert(&ancient, Vec::new()).await.unwrap();
    let day = Duration::from_secs(24 * 3600);

    let (holder, connection) = url
        .driver()
        .connect(url.tls().connector().unwrap())
        .await
        .expect("connects");
    tokio::spawn(connection);
    let lock = super::super::schema::PRUNE_LOCK;
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&lock])
        .await
        .unwrap();
    let skipped = a.prune(day, day).await.unwrap();
    assert_eq!(skipped, crate::store::PruneStats::default());
    assert!(a.event(&ancient.id).await.unwrap().is_some());

    holder
        .execute("SELECT pg_advisory_unlock($1)", &[&lock])
        .await
        .unwrap();
    assert_eq!(a.prune(day, day).await.unwrap().events_deleted, 1);
}
