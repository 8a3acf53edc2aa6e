//! The tables of the SQLite inbox, and bringing an inbox made by an older hookline up to date.

use rusqlite::Connection;

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

/// The tables. `user_version` 2 replaced the full index `deliveries_due` by `deliveries_open`;
/// 3 added the `success_*` columns of `deliveries` (see [`super::attempts::finish`]), which
/// [`add_success_columns`] adds to an older inbox.
pub(super) const SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    source       TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    provider_id  TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    decode_error TEXT,
    body         BLOB
);
CREATE INDEX IF NOT EXISTS events_received ON events(received_at);
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
    UNIQUE (event_seq, route)
);
DROP INDEX IF EXISTS deliveries_due;
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries(state, handler, due_at)
    WHERE ",
    open_delivery!(),
    ";
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
PRAGMA user_version = 3;
"
);

/// Creates the tables of a new inbox, or brings those of an older one up to date.
pub(super) fn apply(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    add_success_columns(conn)
}

/// Adds the columns that hold a delivery's successful attempt to a `deliveries` table created
/// before they existed (`CREATE TABLE IF NOT EXISTS` leaves such a table as it is).
fn add_success_columns(conn: &Connection) -> rusqlite::Result<()> {
    let present: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('deliveries') WHERE name = 'success_started_at'",
        [],
        |r| r.get(0),
    )?;
    if !present {
        conn.execute_batch(
            "ALTER TABLE deliveries ADD COLUMN success_started_at INTEGER;
             ALTER TABLE deliveries ADD COLUMN success_duration_ms INTEGER;
             ALTER TABLE deliveries ADD COLUMN success_http_status INTEGER;",
        )?;
    }
    Ok(())
}
