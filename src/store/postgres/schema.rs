//! The schema's versions, and bringing a database up to date one replica at a time.
//!
//! Each version is a file in `migrations/`, applied in its own transaction and recorded in
//! `schema_migrations`. Replicas that start together take turns under an advisory lock: the
//! first applies what is missing, the others then find nothing to do. A database whose schema is
//! newer than this build knows is refused: an older hookline must not write to tables it does
//! not understand.

use tokio_postgres::Client;

use super::error::Failure;
use crate::store::StoreError;

/// One version of the schema: the SQL that turns the previous version into it.
struct Migration {
    /// Its number, from 1.
    version: i32,
    /// What it does, recorded with it.
    name: &'static str,
    /// The statements.
    sql: &'static str,
}

/// Every version, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "the inbox: events, deliveries, attempts; notices of due work",
        sql: include_str!("migrations/0001_inbox.sql"),
    },
    Migration {
        version: 2,
        name: "what the inspector reads: contact and conversation ids, events per minute",
        sql: include_str!("migrations/0002_inspector.sql"),
    },
    Migration {
        version: 3,
        name: "ordered routes: the key each delivery holds",
        sql: include_str!("migrations/0003_ordered.sql"),
    },
    Migration {
        version: 4,
        name: "ordered routes: deliveries held back behind the head of their key",
        sql: include_str!("migrations/0004_held.sql"),
    },
    Migration {
        version: 5,
        name:
            "deliveries without a foreign key to events; a trigger deletes them with their events",
        sql: include_str!("migrations/0005_no_event_foreign_key.sql"),
    },
    Migration {
        version: 6,
        name: "bodies compressed with lz4 where the server has it",
        sql: include_str!("migrations/0006_lz4_bodies.sql"),
    },
];

/// The advisory lock held while migrating ("hook" "line" "migr" in ASCII); advisory locks are
/// per database, so two hookline deployments in one database take turns too, harmlessly.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6c69_6e01;

/// The advisory lock held by the replica that prunes (see [`super::prune`]).
pub(super) const PRUNE_LOCK: i64 = 0x686f_6f6b_6c69_6e02;

/// What bringing the schema up to date did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The version found.
    pub from: i32,
    /// The version left.
    pub to: i32,
}

/// The newest version this build knows.
pub(super) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies the versions the database lacks, holding [`MIGRATION_LOCK`] so that replicas that
/// start together do not race; refuses a schema newer than [`latest`].
pub(super) async fn migrate(conn: &mut Client) -> Result<Migrated, Failure> {
    conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = apply(conn).await;
    // Unlocking fails only with the connection, whose end releases the lock as well.
    let _ = conn
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}

async fn apply(conn: &mut Client) -> Result<Migrated, Failure> {
    let current = current_version(conn).await?;
    if current > latest() {
        return Err(newer_schema(current).into());
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        let tx = conn.transaction().await?;
        tx.batch_execute(migration.sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "database schema migrated"
        );
    }
    Ok(Migrated {
        from: current,
        to: current.max(latest()),
    })
}

/// Whether this build could run on the database's schema, found out without changing
/// anything: what `check-config` runs in place of [`migrate`]. An older schema is fine (serve
/// brings it up to date); a newer one is refused as [`migrate`] refuses it.
pub(super) async fn check(conn: &Client) -> Result<i32, Failure> {
    let exists: bool = conn
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let current: i32 = conn
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    if current > latest() {
        return Err(newer_schema(current).into());
    }
    Ok(current)
}

/// The refusal of a schema that a newer hookline migrated.
fn newer_schema(current: i32) -> StoreError {
    StoreError::Conflict(format!(
        "the database's schema is at version {current}, newer than this hookline knows \
         (version {}): a newer hookline migrated it. Run that version (or a newer one); \
         this one must not write to it",
        latest()
    ))
}

/// The version the database is at (0 when hookline has never run on it), creating the table
/// that records versions if need be.
async fn current_version(conn: &Client) -> Result<i32, Failure> {
    let exists: bool = conn
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        conn.batch_execute(
            "CREATE TABLE schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
    }
    let version = conn
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    Ok(version)
}
