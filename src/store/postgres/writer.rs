//! Group commit: the inserts that intake makes at the same moment share one statement, one
//! transaction and one round trip.
//!
//! Intake's inserts queue for one writer task. It takes every insert waiting, writes their
//! events and deliveries with one statement (`INSERT … SELECT FROM unnest(…) ON CONFLICT DO
//! NOTHING RETURNING`, events and deliveries together in one statement), and answers each once
//! the statement has returned. The statement runs as its own transaction: the server sends its
//! result only after the commit, and with its default `synchronous_commit = on` only once the
//! commit is on disk, so an answer means durable. While a batch commits, the next one gathers;
//! it starts once it is large enough to be worth a statement of its own
//! ([`MIN_OVERLAPPING_BATCH`]) or the batch before is done, and at most [`BATCHES_IN_FLIGHT`]
//! commit at once, on pooled connections.
//!
//! Events are written in the order of their ids, so that two batches that share ids (a
//! provider's retry landing on two replicas) lock them in the same order and never deadlock.
//! Duplicates within a batch are answered without the database: the first of them stands for
//! the others.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

use super::error::Failure;
use super::order;
use super::pool::{Connection, Db};
use super::shards::Shards;
use crate::envelope::Envelope;
use crate::store::batch::take_waiting;
use crate::store::{DeliveryStart, InsertOutcome, NewDelivery, StoreError};

/// Most inserts committed in one statement.
const MAX_BATCH: usize = 1024;
/// Batches that may commit at once. PostgreSQL flushes in one go the WAL of every commit
/// waiting when a flush starts, so batches that overlap share flushes, which pays where a flush
/// takes milliseconds (docs/postgres.md, "Measurements").
const BATCHES_IN_FLIGHT: usize = 4;
/// Fewest inserts a batch starts with while another batch commits (with none committing, a
/// batch starts with whatever waits). Every statement costs the server the same fixed work
/// (executor set-up, triggers, commit), whatever it carries: batches of one or two that started
/// only because a slot was free took the CPU that larger batches needed, and made both fast and
/// slow flushes slower (docs/postgres.md, "Measurements").
const MIN_OVERLAPPING_BATCH: usize = 32;
/// Inserts that may wait for the writer before intake waits too (bounded memory).
const QUEUE_DEPTH: usize = 8192;

/// Events and their deliveries, written by one statement and committed by it, with `$held`
/// as the expression that says whether each delivery is held.
macro_rules! insert_statement {
    ($held:expr) => {
        concat!(
            "
WITH new_events AS (
    INSERT INTO events (id, source, endpoint, provider_id, event_type, received_at,
                        decode_error, body, contact_id, conversation_id)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::timestamptz[], $7::text[], $8::bytea[], $17::text[], $18::text[])
    ON CONFLICT (id) DO NOTHING
    RETURNING seq, id, source, event_type, received_at, decode_error IS NOT NULL AS undecodable
), counted AS (
    INSERT INTO event_minutes AS m (minute, source, event_type, shard, events, undecodable)
    SELECT date_trunc('minute', received_at, 'UTC'), source, event_type,
           $21::int2, count(*), count(*) FILTER (WHERE undecodable)
    FROM new_events
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (minute, source, event_type, shard) DO UPDATE
        SET events = m.events + excluded.events,
            undecodable = m.undecodable + excluded.undecodable
), new_deliveries AS (
    INSERT INTO deliveries (event_seq, route, handler, state, attempts, due_at, lease_until,
                            since, success_started_at, success_duration_ms, order_key,
                            order_blocks, held)
    SELECT e.seq, d.route, d.handler, d.state, d.attempts, now(),
           now() + make_interval(secs => d.lease_secs), now(),
           d.success_started_at, d.success_duration_ms, d.order_key, d.order_blocks,
",
            $held,
            "
    FROM unnest($9::text[], $10::text[], $11::text[], $12::text[], $13::int4[],
                $14::float8[], $15::timestamptz[], $16::int8[], $19::text[], $20::bool[])
         AS d (event_id, route, handler, state, attempts, lease_secs,
               success_started_at, success_duration_ms, order_key, order_blocks)
    JOIN new_events e ON e.id = d.event_id
    RETURNING event_seq, id, route
)
SELECT id, seq, NULL::int8, NULL::text FROM new_events
UNION ALL
SELECT NULL, event_seq, id, route FROM new_deliveries"
        )
    };
}

/// [`insert_statement`] for a batch with deliveries of ordered routes. A pending delivery of
/// an ordered route is `held` when an open delivery of its key is stored already or comes
/// earlier in the same statement (which its own snapshot does not show).
const INSERT_ORDERED: &str = insert_statement!(
    "CASE WHEN d.order_key IS NULL OR d.state <> 'pending' THEN false
          ELSE count(*) OVER (PARTITION BY d.route, d.order_key ORDER BY e.seq
                              ROWS UNBOUNDED PRECEDING) > 1
               OR EXISTS (
                   SELECT 1 FROM deliveries p
                   WHERE p.route = d.route AND p.order_key = d.order_key
                     AND p.state <> 'delivered' AND (p.state <> 'dead' OR p.order_blocks))
     END"
);

/// [`insert_statement`] for a batch without: no delivery is held, and the server is spared the
/// window over the batch's deliveries that deciding it takes.
const INSERT_UNORDERED: &str = insert_statement!("false");

/// The handle intake's inserts go through. Cheap to clone; the writer task stops once every
/// handle is gone and the inserts already sent are answered.
#[derive(Clone)]
pub(super) struct Writer {
    /// Queue of the writer task.
    jobs: mpsc::Sender<Job>,
}

/// One insert waiting for its commit.
struct Job {
    /// The event's columns.
    row: EventRow,
    /// Its deliveries.
    deliveries: Vec<NewDelivery>,
    /// Where its outcome goes.
    reply: oneshot::Sender<Result<InsertOutcome, StoreError>>,
}

impl Writer {
    /// Starts the writer task on `db`.
    pub(super) fn start(db: Arc<Db>) -> Writer {
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(writer_loop(db, queue));
        Writer { jobs }
    }

    /// Commits an event with its deliveries, or reports it as a duplicate; returns once the
    /// commit is durable.
    pub(super) async fn insert(
        &self,
        envelope: &Envelope,
        deliveries: Vec<NewDelivery>,
    ) -> Result<InsertOutcome, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let job = Job {
            row: EventRow::from(envelope),
            deliveries,
            reply,
        };
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }
}

/// Gathers what is waiting into a batch whenever a batch may start, and commits it in a task
/// of its own.
async fn writer_loop(db: Arc<Db>, mut queue: mpsc::Receiver<Job>) {
    let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    let shards = Arc::new(Shards::new(BATCHES_IN_FLIGHT));
    let finished = Arc::new(Notify::new());
    loop {
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(batch) = gather(&mut queue, &in_flight, &finished).await else {
            return;
        };
        let (db, shards, finished) = (db.clone(), shards.clone(), finished.clone());
        tokio::spawn(async move {
            let shard = shards.take();
            commit(&db, batch, shard.unwrap_or(0)).await;
            if let Some(shard) = shard {
                shards.give_back(shard);
            }
            drop(slot);
            finished.notify_one();
        });
    }
}

/// The next batch: what is waiting once an insert has come. While another batch commits, it
/// starts only once it holds [`MIN_OVERLAPPING_BATCH`] inserts or nothing else is committing;
/// `None` once every handle is gone.
async fn gather(
    queue: &mut mpsc::Receiver<Job>,
    in_flight: &Semaphore,
    finished: &Notify,
) -> Option<Vec<Job>> {
    let mut batch = vec![queue.recv().await?];
    take_waiting(queue, &mut batch, MAX_BATCH);
    // Our own slot is taken: any other permit missing is a batch committing.
    let others_committing = || in_flight.available_permits() + 1 < BATCHES_IN_FLIGHT;
    while batch.len() < MIN_OVERLAPPING_BATCH && others_committing() {
        tokio::select! {
            job = queue.recv() => match job {
                Some(job) => {
                    batch.push(job);
                    take_waiting(queue, &mut batch, MAX_BATCH);
                }
                None => break,
            },
            // A batch finished: look again whether any other still commits.
            () = finished.notified() => {}
        }
    }
    Some(batch)
}

/// Commits a batch, counting its events in `shard` of their minutes ([`super::shards`]), and
/// answers its inserts. When the statement fails because of one event's data, the events are
/// committed one by one, so that the others do not fail with it.
async fn commit(db: &Db, batch: Vec<Job>, shard: i16) {
    crate::metrics::commit_batch(batch.len());
    let (mut leaders, followers) = split_duplicates(batch);
    leaders.sort_by(|a, b| a.row.id.cmp(&b.row.id));
    let rows: Vec<&Job> = leaders.iter().collect();
    let outcome = db
        .try_run(async |conn| insert_events(conn, &rows, shard).await)
        .await;
    let outcomes = match outcome {
        Err(failure) if failure.is_about_the_data() && leaders.len() > 1 => {
            tracing::warn!(error = %db.error("insert events", failure), events = leaders.len(),
                "an event failed its batch; committing the batch's events one by one");
            one_by_one(db, &leaders, shard).await
        }
        Err(failure) => {
            let error = db.error("insert events", failure);
            tracing::error!(error = %error, events = leaders.len(), "store commit failed");
            vec![Err(error); leaders.len()]
        }
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
    };
    answer(leaders, followers, outcomes);
}

/// Commits each event in a statement of its own.
async fn one_by_one(db: &Db, jobs: &[Job], shard: i16) -> Vec<Result<InsertOutcome, StoreError>> {
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let outcome = db
            .run("insert an event", async |conn| {
                let mut one = insert_events(conn, &[job], shard).await?;
                Ok(one.remove(0))
            })
            .await;
        outcomes.push(outcome);
    }
    outcomes
}

/// The first insert of each event id, and the later inserts of the same ids.
fn split_duplicates(batch: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    let mut seen = HashSet::with_capacity(batch.len());
    batch
        .into_iter()
        .partition(|job| seen.insert(job.row.id.clone()))
}

/// Sends each insert its outcome: a repeated event is a duplicate if its first insert
/// committed (stored or found), and fails with it otherwise.
fn answer(
    leaders: Vec<Job>,
    followers: Vec<Job>,
    outcomes: Vec<Result<InsertOutcome, StoreError>>,
) {
    let failed: HashMap<String, StoreError> = leaders
        .iter()
        .zip(&outcomes)
        .filter_map(|(job, outcome)| Some((job.row.id.clone(), outcome.as_ref().err()?.clone())))
        .collect();
    for (job, outcome) in leaders.into_iter().zip(outcomes) {
        // The request may have given up waiting (cancelled); nothing to do then.
        let _ = job.reply.send(outcome);
    }
    for job in followers {
        let outcome = match failed.get(&job.row.id) {
            Some(error) => Err(error.clone()),
            None => Ok(InsertOutcome::Duplicate),
        };
        let _ = job.reply.send(outcome);
    }
}

/// Writes the events and their deliveries with [`insert_statement`], counting them in `shard`
/// of their minutes; an event the database already holds is a duplicate. Deliveries of ordered
/// routes are written in a transaction that first takes their keys' locks, so that whether each
/// is held is read after any finish of its key committed (see [`order`]).
async fn insert_events(
    conn: &mut Connection,
    jobs: &[&Job],
    shard: i16,
) -> Result<Vec<InsertOutcome>, Failure> {
    let columns = Columns::of(jobs, shard);
    let rows = if columns.order_keys.iter().any(Option::is_some) {
        let tx = conn.transaction().await?;
        let lock = tx.prepare_cached(order::LOCK_KEYS).await?;
        tx.execute(&lock, &[&columns.routes, &columns.order_keys])
            .await?;
        let statement = tx.prepare_cached(INSERT_ORDERED).await?;
        let rows = tx.query(&statement, &columns.params()).await?;
        tx.commit().await?;
        rows
    } else {
        let statement = conn.prepare_cached(INSERT_UNORDERED).await?;
        conn.query(&statement, &columns.params()).await?
    };
    let mut seqs: HashMap<String, i64> = HashMap::with_capacity(jobs.len());
    let mut delivery_ids: HashMap<(i64, String), i64> = HashMap::new();
    for row in rows {
        let seq: i64 = row.get(1);
        match (
            row.get::<_, Option<String>>(0),
            row.get::<_, Option<i64>>(2),
        ) {
            (Some(id), _) => {
                seqs.insert(id, seq);
            }
            (None, Some(delivery)) => {
                delivery_ids.insert((seq, row.get(3)), delivery);
            }
            (None, None) => {}
        }
    }
    jobs.iter()
        .map(|job| match seqs.get(&job.row.id) {
            None => Ok(InsertOutcome::Duplicate),
            Some(&seq) => {
                let ids = job.deliveries.iter().map(|d| {
                    let created = delivery_ids.get(&(seq, d.route.clone())).copied();
                    created.ok_or_else(|| {
                        let missing =
                            format!("the delivery of route {:?} was not created", d.route);
                        Failure::Refused(StoreError::Unavailable(missing))
                    })
                });
                Ok(InsertOutcome::Stored {
                    delivery_ids: ids.collect::<Result<_, _>>()?,
                })
            }
        })
        .collect()
}

/// What intake writes for one event: the envelope's columns, owned so that the job can wait in
/// the queue without the decoded event.
struct EventRow {
    id: String,
    source: &'static str,
    endpoint: String,
    provider_id: String,
    event_type: String,
    received_at: DateTime<Utc>,
    decode_error: Option<String>,
    body: Bytes,
    /// The contact and conversation ids the event is about, for the inspector's lookup.
    contact_id: Option<String>,
    conversation_id: Option<String>,
}

impl From<&Envelope> for EventRow {
    fn from(envelope: &Envelope) -> Self {
        let keys = envelope.key_ids();
        EventRow {
            id: envelope.id.clone(),
            source: envelope.source.as_str(),
            endpoint: text(&envelope.endpoint),
            provider_id: text(&envelope.provider_id),
            event_type: text(&envelope.event_type),
            received_at: whole_millis(envelope.received_at),
            decode_error: envelope.decode_error.as_deref().map(text),
            body: envelope.body.clone(),
            contact_id: keys.contact.as_deref().map(text),
            conversation_id: keys.conversation.as_deref().map(text),
        }
    }
}

/// A string as PostgreSQL's `text` can hold it: NUL, which it cannot, becomes U+FFFD. (A
/// provider's id or type with a NUL would otherwise fail every retry of its request.)
fn text(value: &str) -> String {
    value.replace('\0', "\u{FFFD}")
}

/// Times are kept to the millisecond, as the SQLite store keeps them, so that a filter by an
/// event's own time finds it in either store.
pub(super) fn whole_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(at.timestamp_millis())
        .single()
        .unwrap_or(at)
}

/// The arrays [`insert_statement`] takes: one element per event, then one per delivery; and
/// the shard of `event_minutes` the batch counts its events in.
struct Columns<'a> {
    ids: Vec<&'a str>,
    sources: Vec<&'a str>,
    endpoints: Vec<&'a str>,
    provider_ids: Vec<&'a str>,
    event_types: Vec<&'a str>,
    received_at: Vec<DateTime<Utc>>,
    decode_errors: Vec<Option<&'a str>>,
    bodies: Vec<&'a [u8]>,
    contact_ids: Vec<Option<&'a str>>,
    conversation_ids: Vec<Option<&'a str>>,
    of_event: Vec<&'a str>,
    routes: Vec<&'a str>,
    handlers: Vec<&'a str>,
    states: Vec<&'static str>,
    attempts: Vec<i32>,
    lease_secs: Vec<Option<f64>>,
    success_started_at: Vec<Option<DateTime<Utc>>>,
    success_duration_ms: Vec<Option<i64>>,
    order_keys: Vec<Option<String>>,
    order_blocks: Vec<bool>,
    shard: i16,
}

impl<'a> Columns<'a> {
    fn of(jobs: &[&'a Job], shard: i16) -> Columns<'a> {
        let mut c = Columns {
            ids: Vec::with_capacity(jobs.len()),
            sources: Vec::with_capacity(jobs.len()),
            endpoints: Vec::with_capacity(jobs.len()),
            provider_ids: Vec::with_capacity(jobs.len()),
            event_types: Vec::with_capacity(jobs.len()),
            received_at: Vec::with_capacity(jobs.len()),
            decode_errors: Vec::with_capacity(jobs.len()),
            bodies: Vec::with_capacity(jobs.len()),
            contact_ids: Vec::with_capacity(jobs.len()),
            conversation_ids: Vec::with_capacity(jobs.len()),
            of_event: Vec::new(),
            routes: Vec::new(),
            handlers: Vec::new(),
            states: Vec::new(),
            attempts: Vec::new(),
            lease_secs: Vec::new(),
            success_started_at: Vec::new(),
            success_duration_ms: Vec::new(),
            order_keys: Vec::new(),
            order_blocks: Vec::new(),
            shard,
        };
        for job in jobs {
            c.push_event(&job.row);
            for delivery in &job.deliveries {
                c.push_delivery(&job.row.id, delivery);
            }
        }
        c
    }

    fn push_event(&mut self, row: &'a EventRow) {
        self.ids.push(&row.id);
        self.sources.push(row.source);
        self.endpoints.push(&row.endpoint);
        self.provider_ids.push(&row.provider_id);
        self.event_types.push(&row.event_type);
        self.received_at.push(row.received_at);
        self.decode_errors.push(row.decode_error.as_deref());
        self.bodies.push(&row.body);
        self.contact_ids.push(row.contact_id.as_deref());
        self.conversation_ids.push(row.conversation_id.as_deref());
    }

    /// A delivery handed over at intake starts as its first attempt, exactly as a claim would;
    /// one done at intake is written as finished by that attempt, exactly as its record would.
    fn push_delivery(&mut self, event_id: &'a str, delivery: &'a NewDelivery) {
        let (state, attempts, lease, success) = match delivery.start {
            DeliveryStart::Pending => ("pending", 0, None, None),
            DeliveryStart::Claimed(lease) => ("inflight", 1, Some(lease.as_secs_f64()), None),
            DeliveryStart::Delivered(success) => ("delivered", 1, None, Some(success)),
        };
        self.of_event.push(event_id);
        self.routes.push(&delivery.route);
        self.handlers.push(&delivery.handler);
        self.states.push(state);
        self.attempts.push(attempts);
        self.lease_secs.push(lease);
        self.success_started_at
            .push(success.map(|s| whole_millis(s.started_at)));
        self.success_duration_ms
            .push(success.map(|s| s.duration.as_millis() as i64));
        let order = delivery.order.as_ref();
        self.order_keys.push(order.map(|o| text(&o.key)));
        self.order_blocks.push(order.is_some_and(|o| o.blocks));
    }

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 21] {
        [
            &self.ids,
            &self.sources,
            &self.endpoints,
            &self.provider_ids,
            &self.event_types,
            &self.received_at,
            &self.decode_errors,
            &self.bodies,
            &self.of_event,
            &self.routes,
            &self.handlers,
            &self.states,
            &self.attempts,
            &self.lease_secs,
            &self.success_started_at,
            &self.success_duration_ms,
            &self.contact_ids,
            &self.conversation_ids,
            &self.order_keys,
            &self.order_blocks,
            &self.shard,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    fn job() -> Job {
        let (reply, _) = oneshot::channel();
        let row = EventRow {
            id: "evt_1".into(),
            source: "chatbrick",
            endpoint: "default".into(),
            provider_id: "msg_1".into(),
            event_type: "message.created".into(),
            received_at: Utc::now(),
            decode_error: None,
            body: Bytes::from_static(b"{}"),
            contact_id: None,
            conversation_id: None,
        };
        Job {
            row,
            deliveries: Vec::new(),
            reply,
        }
    }

    async fn queue_with(jobs: usize) -> (mpsc::Sender<Job>, mpsc::Receiver<Job>) {
        let (sender, queue) = mpsc::channel(QUEUE_DEPTH);
        for _ in 0..jobs {
            sender.send(job()).await.unwrap();
        }
        (sender, queue)
    }

    #[tokio::test]
    async fn with_nothing_else_committing_a_batch_starts_with_what_waits() {
        let (_sender, mut queue) = queue_with(3).await;
        let slots = Semaphore::new(BATCHES_IN_FLIGHT);
        let _ours = slots.try_acquire().unwrap();
        let batch = gather(&mut queue, &slots, &Notify::new())
            .now_or_never()
            .expect("a batch starts at once")
            .unwrap();
        assert_eq!(batch.len(), 3);
    }

    #[tokio::test]
    async fn beside_a_committing_batch_a_small_one_waits_until_that_one_is_done() {
        let (sender, mut queue) = queue_with(3).await;
        let slots = Semaphore::new(BATCHES_IN_FLIGHT);
        let committing = slots.try_acquire().unwrap();
        let _ours = slots.try_acquire().unwrap();
        let finished = Notify::new();
        let mut gathering = Box::pin(gather(&mut queue, &slots, &finished));
        assert!((&mut gathering).now_or_never().is_none());
        sender.send(job()).await.unwrap();
        assert!(
            (&mut gathering).now_or_never().is_none(),
            "4 inserts are no reason for a second statement"
        );
        drop(committing);
        finished.notify_one();
        let batch = gathering
            .now_or_never()
            .expect("starts once the other is done");
        assert_eq!(batch.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn beside_a_committing_batch_a_large_one_starts_at_once() {
        let (_sender, mut queue) = queue_with(MIN_OVERLAPPING_BATCH + 5).await;
        let slots = Semaphore::new(BATCHES_IN_FLIGHT);
        let _committing = slots.try_acquire().unwrap();
        let _ours = slots.try_acquire().unwrap();
        let batch = gather(&mut queue, &slots, &Notify::new())
            .now_or_never()
            .expect("enough inserts overlap the batch that commits")
            .unwrap();
        assert_eq!(batch.len(), MIN_OVERLAPPING_BATCH + 5);
    }

    #[tokio::test]
    async fn gathering_ends_when_every_handle_is_gone() {
        let (sender, mut queue) = queue_with(0).await;
        drop(sender);
        let slots = Semaphore::new(BATCHES_IN_FLIGHT);
        let gathered = gather(&mut queue, &slots, &Notify::new()).now_or_never();
        assert!(matches!(gathered, Some(None)));
    }
}
