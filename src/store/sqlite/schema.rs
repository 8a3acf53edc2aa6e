//! The tables of the SQLite inbox, and bringing an inbox made by an older hookline up to date.

use rusqlite::Connection;

use super::dedupe::id_hash;

/// The condition of the partial index `deliveries_open`: deliveries that are pending, in flight
/// or dead. Delivered ones, nearly all of them, stay out of it: a direct hand-over (inserted in
/// flight, then delivered) adds an entry and removes it again in the same few pages, instead of
/// also writing into an ever-growing region of delivered entries, and the index stays as small as
/// the open work. SQLite uses a partial index only for queries that repeat its condition word for
/// word, so every query for open deliveries does (the test `open_queries_use_the_partial_index`
/// checks their plans).
macro_rules! open_delivery {
    () => {
        "state <> 'delivered'"
    };
}
pub(super) use open_delivery;

/// The open deliveries `p` of the same route and key as delivery `d` and of an earlier event:
/// those that hold `d` back. A dead one holds it back while it [blocks](crate::store::OrderKey::blocks).
/// Read through `deliveries_ordered` ([`ORDERED`]).
macro_rules! earlier_open {
    () => {
        "SELECT 1 FROM deliveries p WHERE p.route = d.route AND p.order_key = d.order_key
             AND p.event_seq < d.event_seq AND p.state <> 'delivered'
             AND (p.state <> 'dead' OR p.order_blocks)"
    };
}
pub(super) use earlier_open;

/// The columns of `events`, as `CREATE TABLE <name>` continues. The id is not `UNIQUE`: the ids
/// of events are kept apart, by hash, in `event_ids` and `event_ids_new` (see
/// [`super::dedupe`]). `contact_id` and `conversation_id` are what the inspector looks events up
/// by ([`INSPECTOR`]).
macro_rules! events_columns {
    () => {
        "(
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL,
    source       TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    provider_id  TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    decode_error TEXT,
    body         BLOB,
    contact_id      TEXT,
    conversation_id TEXT
)"
    };
}

/// The version [`apply`] brings an inbox to.
pub(super) const VERSION: i64 = 6;

/// The tables. `user_version` 2 replaced the full index `deliveries_due` by `deliveries_open`;
/// 3 added the `success_*` columns of `deliveries` (see [`super::attempts::finish`]), which
/// [`add_success_columns`] adds to an older inbox; 4 moved the ids of events out of a `UNIQUE`
/// index on `events.id` into `event_ids` and `event_ids_new`, which [`move_ids_out_of_events`]
/// does for an older inbox; 5 added what ordered routes keep ([`ORDERED`]), which
/// [`add_order_columns`] adds to an older inbox; 6 added `held` and put it in
/// `deliveries_open` ([`QUEUE`]), which [`add_held_column`] does for an older inbox. What the
/// inspector reads comes on top ([`INSPECTOR`]), added to an older inbox by [`apply`] whatever
/// its version.
pub(super) const SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS events ",
    events_columns!(),
    ";
CREATE INDEX IF NOT EXISTS events_received ON events(received_at);
CREATE TABLE IF NOT EXISTS event_ids (
    hash INTEGER NOT NULL,
    seq  INTEGER NOT NULL,
    PRIMARY KEY (hash, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS event_ids_new (
    seq  INTEGER PRIMARY KEY,
    hash INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY,
    event_seq   INTEGER NOT NULL,
    route       TEXT NOT NULL,
    handler     TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    due_at      INTEGER NOT NULL,
    lease_until INTEGER,
    since       INTEGER NOT NULL,
    last_error  TEXT,
    success_started_at  INTEGER,
    success_duration_ms INTEGER,
    success_http_status INTEGER,
    order_key    TEXT,
    order_blocks INTEGER NOT NULL DEFAULT 0,
    held         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (event_seq, route)
);
DROP INDEX IF EXISTS deliveries_due;
CREATE TABLE IF NOT EXISTS attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    http_status INTEGER,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts(delivery_id);
"
);

/// What the inspector reads, beside the tables above:
/// - `contact_id` and `conversation_id` of `events` (what [`crate::envelope::KeyIds`] gave at
///   intake), each indexed only where it is set, for looking events up by them;
/// - `event_minutes`, events counted per minute, source and type as they are stored, so that
///   the activity chart and the list of types seen read a few thousand rows rather than every
///   event (pruned with the events' ids);
/// - a partial index of the undecodable events, which are few: listing them walks it instead
///   of every event.
///
/// [`add_inspector_columns`] adds the columns to an older inbox; its events stay without them.
pub(super) const INSPECTOR: &str = "
CREATE INDEX IF NOT EXISTS events_contact ON events(contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_conversation ON events(conversation_id)
    WHERE conversation_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_undecodable ON events(seq) WHERE decode_error IS NOT NULL;
CREATE TABLE IF NOT EXISTS event_minutes (
    minute      INTEGER NOT NULL,
    source      TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    events      INTEGER NOT NULL,
    undecodable INTEGER NOT NULL,
    PRIMARY KEY (minute, source, event_type)
) WITHOUT ROWID;
";

/// The work queue's index: the open deliveries by state, handler, whether they are held back
/// (`held`, see [`crate::store::order`]) and when they are due. A claim reads the pending ones
/// of its handler that are not held, oldest first, as one range of it: however many
/// deliveries wait behind the head of an ordered key, a claim never walks them.
pub(super) const QUEUE: &str = concat!(
    "CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries(state, handler, held, due_at)
    WHERE ",
    open_delivery!(),
    ";"
);

/// What ordered routes read (docs/ordering.md): the open deliveries that hold a key, by route,
/// key and event, so that a claim finds whether an earlier one of its key is open in one index
/// probe. Delivered ones stay out of it, as they stay out of `deliveries_open`, and so do
/// unordered ones. Queries repeat `open_delivery!()` word for word and compare `order_key`
/// with `=`, which SQLite takes as implying `order_key IS NOT NULL`.
pub(super) const ORDERED: &str = concat!(
    "CREATE INDEX IF NOT EXISTS deliveries_ordered ON deliveries(route, order_key, event_seq)
    WHERE ",
    open_delivery!(),
    " AND order_key IS NOT NULL;"
);

/// Creates the tables of a new inbox, or brings those of an older one up to date.
pub(super) fn apply(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    add_success_columns(conn)?;
    add_order_columns(conn)?;
    conn.execute_batch(ORDERED)?;
    add_held_column(conn)?;
    conn.execute_batch(QUEUE)?;
    add_inspector_columns(conn)?;
    move_ids_out_of_events(conn)?;
    // After the rebuild of `events` above, which drops its indexes.
    let counted: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = 'event_minutes'",
        [],
        |r| r.get(0),
    )?;
    conn.execute_batch(INSPECTOR)?;
    if !counted {
        count_stored_minutes(conn)?;
    }
    conn.execute_batch(&format!("PRAGMA user_version = {VERSION};"))
}

/// Rebuilds the `events` table of an inbox made before version 4 without its `UNIQUE` index on
/// `id` (SQLite cannot drop that index alone), and fills `event_ids` with the ids of its events,
/// sorted by hash. One transaction: an interrupted migration leaves the inbox as it was, and
/// runs again at the next start. It copies every event once, so a large inbox takes a while
/// (docs/deployment.md, "Upgrading").
fn move_ids_out_of_events(conn: &Connection) -> rusqlite::Result<()> {
    let unique: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master
         WHERE type = 'index' AND tbl_name = 'events' AND name LIKE 'sqlite_autoindex_events_%'",
        [],
        |r| r.get(0),
    )?;
    if !unique {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(concat!(
        "CREATE TABLE events_v4 ",
        events_columns!(),
        ";
         INSERT INTO events_v4 (seq, id, source, endpoint, provider_id, event_type, received_at, decode_error, body,
                 contact_id, conversation_id)
             SELECT seq, id, source, endpoint, provider_id, event_type, received_at, decode_error, body,
                 contact_id, conversation_id FROM events;
         DROP TABLE events;
         ALTER TABLE events_v4 RENAME TO events;
         CREATE INDEX events_received ON events(received_at);"
    ))?;
    let mut ids: Vec<(i64, i64)> = tx
        .prepare("SELECT seq, id FROM events")?
        .query_map([], |r| Ok((id_hash(&r.get::<_, String>(1)?), r.get(0)?)))?
        .collect::<Result<_, _>>()?;
    ids.sort_unstable();
    {
        let mut insert = tx.prepare("INSERT INTO event_ids (hash, seq) VALUES (?1, ?2)")?;
        for (hash, seq) in ids {
            insert.execute([hash, seq])?;
        }
    }
    tx.commit()
}

/// Adds the key id columns to an `events` table created before they existed.
fn add_inspector_columns(conn: &Connection) -> rusqlite::Result<()> {
    if !has_column(conn, "events", "contact_id")? {
        conn.execute_batch(
            "ALTER TABLE events ADD COLUMN contact_id TEXT;
             ALTER TABLE events ADD COLUMN conversation_id TEXT;",
        )?;
    }
    Ok(())
}

/// Counts the events an older inbox already holds into `event_minutes`, once, when that table
/// is created (a new inbox has none).
fn count_stored_minutes(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "INSERT OR REPLACE INTO event_minutes (minute, source, event_type, events, undecodable)
         SELECT received_at / 60000 * 60000, source, event_type, COUNT(*), COUNT(decode_error)
         FROM events GROUP BY 1, 2, 3",
    )
}

/// Whether `table` has a column `name`.
fn has_column(conn: &Connection, table: &str, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        [table, name],
        |r| r.get(0),
    )
}

/// Adds the columns of ordered routes to a `deliveries` table created before they existed; its
/// deliveries stay unordered.
fn add_order_columns(conn: &Connection) -> rusqlite::Result<()> {
    if !has_column(conn, "deliveries", "order_key")? {
        conn.execute_batch(
            "ALTER TABLE deliveries ADD COLUMN order_key TEXT;
             ALTER TABLE deliveries ADD COLUMN order_blocks INTEGER NOT NULL DEFAULT 0;",
        )?;
    }
    Ok(())
}

/// Adds `held` to a `deliveries` table created before it existed, holds back the pending
/// deliveries of ordered keys that do not head their key, and drops the `deliveries_open` made
/// without `held`, for [`QUEUE`] to make again.
fn add_held_column(conn: &Connection) -> rusqlite::Result<()> {
    if !has_column(conn, "deliveries", "held")? {
        conn.execute_batch(concat!(
            "ALTER TABLE deliveries ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
             DROP INDEX IF EXISTS deliveries_open;
             UPDATE deliveries AS d SET held = 1
             WHERE d.state = 'pending' AND d.order_key IS NOT NULL AND EXISTS (",
            earlier_open!(),
            ");"
        ))?;
    }
    Ok(())
}

/// Adds the columns that hold a delivery's successful attempt to a `deliveries` table created
/// before they existed (`CREATE TABLE IF NOT EXISTS` leaves such a table as it is).
fn add_success_columns(conn: &Connection) -> rusqlite::Result<()> {
    if !has_column(conn, "deliveries", "success_started_at")? {
        conn.execute_batch(
            "ALTER TABLE deliveries ADD COLUMN success_started_at INTEGER;
             ALTER TABLE deliveries ADD COLUMN success_duration_ms INTEGER;
             ALTER TABLE deliveries ADD COLUMN success_http_status INTEGER;",
        )?;
    }
    Ok(())
}
