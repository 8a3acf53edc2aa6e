//! The store that replicas share: PostgreSQL.
//!
//! Several `hookline serve` processes on one database hold one inbox: an event is committed
//! durably before its 2xx whichever replica received it, a provider's retry that lands on
//! another replica is a duplicate, deliveries are claimed so that no two replicas run the same
//! one, and work one replica commits is picked up at once by whichever has a free slot.
//! docs/postgres.md says how to run it and what it guarantees.
//!
//! The [`Store`] methods below only say what runs where; the SQL lives in the modules named
//! after what it does: group commit of intake's inserts (`writer`), the shared work queue
//! (`queue`), attempts (`attempts`), replays (`replay`), the inspector's reads (`reads`, with
//! `filters` and `rows`), pruning (`prune`), the notices of due work that replicas send each
//! other (`notices`), and the schema's versions (`schema`, `migrations/`). Connections come from
//! a bounded pool with timeouts (`pool`), secured as the URL says (`tls`, `url`).

mod attempts;
mod error;
mod filters;
mod notices;
mod order;
mod pool;
mod prune;
mod queue;
mod reads;
mod replay;
mod rows;
mod schema;
mod shards;
mod tls;
mod url;
mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use self::error::Failure;
use self::notices::Notices;
use self::pool::Db;
use self::writer::Writer;
use super::{
    AttemptRecord, Backlog, BlockedKey, Claimed, DeadLetterGroups, DeliveryCounts, DeliveryInfo,
    DueWork, EventDetail, EventFilter, EventSummary, EventType, InsertOutcome, Leases, MinuteCount,
    NewDelivery, NextStep, OrderedRoute, PruneStats, Store, StoreError,
};
use crate::envelope::Envelope;

pub use self::schema::Migrated;
pub use self::url::DatabaseUrl;

/// Connections per replica unless `store.pool_size` says otherwise: enough for four commits in
/// flight, every handler's claims and attempt records, and the admin API; three replicas take
/// about 50 of PostgreSQL's default 100.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long a replica that starts waits for PostgreSQL to be reachable before it gives up (a
/// database that starts with it, or restarts).
const REACHABLE_WITHIN: Duration = Duration::from_secs(30);
/// Pause between attempts to reach PostgreSQL at start.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The PostgreSQL inbox, shared by every replica that opens the same database.
pub struct PostgresStore {
    /// The pool every operation but intake's inserts runs on.
    db: Arc<Db>,
    /// Group commit of intake's inserts.
    writer: Writer,
    /// Notices of due work from every replica, and whether the database is reachable.
    notices: Notices,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", self.db.url())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` with at most `pool_size` connections, brings the schema up to date
    /// (waiting up to 30 s for a database that cannot be reached yet), and starts the writer
    /// and the listening connection.
    pub async fn open(url: &DatabaseUrl, pool_size: usize) -> Result<PostgresStore, StoreError> {
        let db = Arc::new(Db::new(url, pool_size).map_err(StoreError::Unavailable)?);
        let migrated = migrate_when_reachable(&db).await?;
        warn_unless_commits_are_durable(&db).await;
        tracing::info!(database = %url, schema_version = migrated.to, "PostgreSQL store open");
        let notices = Notices::start(url.clone()).map_err(StoreError::Unavailable)?;
        Ok(PostgresStore {
            writer: Writer::start(db.clone()),
            db,
            notices,
        })
    }

    /// Brings the schema of the database at `url` up to date, and nothing else: what
    /// `hookline migrate` runs before replicas of a new version start.
    pub async fn migrate(url: &DatabaseUrl) -> Result<Migrated, StoreError> {
        let db = Db::new(url, 1).map_err(StoreError::Unavailable)?;
        migrate(&db).await.map_err(|f| db.error(MIGRATING, f))
    }

    /// Whether [`PostgresStore::open`] could run on the database at `url` now: it can be
    /// reached with these credentials and its schema is not newer than this build's. Changes
    /// nothing; what `check-config` runs in its place. Returns the schema's version.
    pub async fn check(url: &DatabaseUrl) -> Result<i32, StoreError> {
        let db = Db::new(url, 1).map_err(StoreError::Unavailable)?;
        let checked = async {
            let conn = db.connection().await?;
            schema::check(&conn).await
        };
        checked
            .await
            .map_err(|f| db.error("read the database schema's version", f))
    }
}

/// What the errors of migrating say could not be done.
const MIGRATING: &str = "bring the database schema up to date";

/// Migrates, retrying for [`REACHABLE_WITHIN`] while the database cannot be reached.
async fn migrate_when_reachable(db: &Db) -> Result<Migrated, StoreError> {
    let started = Instant::now();
    loop {
        match migrate(db).await {
            Ok(migrated) => return Ok(migrated),
            Err(f) if f.is_unreachable() && started.elapsed() < REACHABLE_WITHIN => {
                let error = db.error(MIGRATING, f);
                tracing::warn!(%error, "PostgreSQL cannot be reached yet; retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(f) => return Err(db.error(MIGRATING, f)),
        }
    }
}

/// Says so when the database acknowledges commits before they are on disk: hookline answers
/// 2xx once its commit returns, so with `synchronous_commit = off` (set for the server, the
/// database or hookline's role) an acknowledged event can be lost when PostgreSQL crashes.
async fn warn_unless_commits_are_durable(db: &Db) {
    let setting = db
        .run("read synchronous_commit", async |conn| {
            let row = conn.query_one("SHOW synchronous_commit", &[]).await?;
            Ok(row.try_get::<_, String>(0)?)
        })
        .await;
    match setting.as_deref() {
        Ok("off") => tracing::warn!(
            "PostgreSQL's synchronous_commit is off: events are acknowledged before their commit \
             is on disk, and a crash of PostgreSQL can lose acknowledged events \
             (docs/postgres.md, \"Durability\")"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read synchronous_commit"),
    }
}

async fn migrate(db: &Db) -> Result<Migrated, Failure> {
    let mut conn = db.connection().await?;
    schema::migrate(&mut conn).await
}

#[async_trait]
impl Store for PostgresStore {
    async fn insert(
        &self,
        envelope: &Envelope,
        deliveries: Vec<NewDelivery>,
    ) -> Result<InsertOutcome, StoreError> {
        self.writer.insert(envelope, deliveries).await
    }

    async fn claim(
        &self,
        handler: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.db
            .run("claim deliveries", async |conn| {
                queue::claim_due(conn, handler, limit, lease).await
            })
            .await
    }

    async fn finish(
        &self,
        delivery_id: i64,
        attempt: AttemptRecord,
        next: NextStep,
    ) -> Result<(), StoreError> {
        self.db
            .run("record an attempt", async |conn| {
                attempts::finish(conn, delivery_id, &attempt, next).await
            })
            .await
    }

    /// Replicas share the database: at start-up only expired leases can be known to belong to
    /// no running delivery.
    async fn release_leases(&self, _which: Leases) -> Result<u64, StoreError> {
        self.db
            .run("release leases", async |conn| {
                queue::release_expired(conn).await
            })
            .await
    }

    async fn expedite(&self, handler: &str) -> Result<u64, StoreError> {
        self.db
            .run("expedite retries", async |conn| {
                queue::expedite(conn, handler).await
            })
            .await
    }

    async fn list_events(&self, filter: EventFilter) -> Result<Vec<EventSummary>, StoreError> {
        self.db
            .run("list events", async |conn| {
                reads::list_events(conn, &filter).await
            })
            .await
    }

    async fn event(&self, id: &str) -> Result<Option<EventDetail>, StoreError> {
        self.db
            .run("read an event", async |conn| reads::event(conn, id).await)
            .await
    }

    async fn dead_letters(&self, filter: EventFilter) -> Result<Vec<DeliveryInfo>, StoreError> {
        self.db
            .run("list dead letters", async |conn| {
                reads::dead_letters(conn, &filter).await
            })
            .await
    }

    async fn replay_delivery(&self, delivery_id: i64) -> Result<(), StoreError> {
        self.db
            .run("replay a delivery", async |conn| {
                replay::replay_delivery(conn, delivery_id).await
            })
            .await
    }

    async fn replay_event(&self, id: &str, routes: Vec<NewDelivery>) -> Result<u64, StoreError> {
        self.db
            .run("replay an event", async |conn| {
                replay::replay_event(conn, id, &routes).await
            })
            .await
    }

    async fn replay_dead(&self, filter: EventFilter) -> Result<u64, StoreError> {
        self.db
            .run("replay dead letters", async |conn| {
                replay::replay_dead(conn, &filter).await
            })
            .await
    }

    async fn prune(
        &self,
        dedupe_window: Duration,
        retention: Duration,
    ) -> Result<PruneStats, StoreError> {
        prune::prune(&self.db, dedupe_window, retention).await
    }

    async fn counts(&self) -> Result<DeliveryCounts, StoreError> {
        self.db
            .run("count deliveries", async |conn| reads::counts(conn).await)
            .await
    }

    async fn oldest_waiting(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.db
            .run("find the oldest waiting delivery", async |conn| {
                reads::oldest_waiting(conn).await
            })
            .await
    }

    async fn activity(&self, since: DateTime<Utc>) -> Result<Vec<MinuteCount>, StoreError> {
        self.db
            .run("read the activity", async |conn| {
                reads::activity(conn, since).await
            })
            .await
    }

    async fn event_types(&self) -> Result<Vec<EventType>, StoreError> {
        self.db
            .run("list event types", async |conn| {
                reads::event_types(conn).await
            })
            .await
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.db
            .run("read the backlog", async |conn| reads::backlog(conn).await)
            .await
    }

    async fn dead_letter_groups(
        &self,
        filter: EventFilter,
    ) -> Result<DeadLetterGroups, StoreError> {
        self.db
            .run("count dead letters", async |conn| {
                reads::dead_letter_groups(conn, &filter).await
            })
            .await
    }

    async fn blocked_keys(&self) -> Result<Vec<BlockedKey>, StoreError> {
        self.db
            .run("list blocked keys", async |conn| {
                order::blocked_keys(conn).await
            })
            .await
    }

    async fn skip_blocked(&self, delivery_id: i64) -> Result<(), StoreError> {
        self.db
            .run("skip a blocked key's dead letter", async |conn| {
                order::skip_blocked(conn, delivery_id).await
            })
            .await
    }

    async fn ordered_routes(&self) -> Result<Vec<OrderedRoute>, StoreError> {
        self.db
            .run("read ordered routes", async |conn| {
                order::ordered_routes(conn).await
            })
            .await
    }

    fn due_work(&self) -> Option<broadcast::Receiver<DueWork>> {
        Some(self.notices.subscribe())
    }

    fn is_available(&self) -> bool {
        self.notices.is_listening()
    }
}

#[cfg(test)]
mod tests;
