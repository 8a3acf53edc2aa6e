-- Version 1: the inbox. The tables are those of the SQLite store (src/store/sqlite/schema.rs),
-- with PostgreSQL's types; docs/postgres.md says how replicas share them.

-- Every acknowledged event. `id` is hookline's event id, derived from the source and the
-- provider's id, so that a provider's retry is a duplicate on whichever replica it lands.
CREATE TABLE events (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text NOT NULL UNIQUE,
    source       text NOT NULL,
    endpoint     text NOT NULL,
    provider_id  text NOT NULL,
    event_type   text NOT NULL,
    received_at  timestamptz NOT NULL,
    decode_error text,
    body         bytea
);
CREATE INDEX events_received ON events (received_at);

-- One delivery per event and matching route. A successful attempt, the common case, is kept in
-- the row (`success_*`) rather than in `attempts`, as the SQLite store does.
CREATE TABLE deliveries (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_seq           bigint NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    route               text NOT NULL,
    handler             text NOT NULL,
    state               text NOT NULL
                        CHECK (state IN ('pending', 'inflight', 'delivered', 'dead')),
    attempts            integer NOT NULL DEFAULT 0,
    due_at              timestamptz NOT NULL,
    lease_until         timestamptz,
    since               timestamptz NOT NULL,
    last_error          text,
    success_started_at  timestamptz,
    success_duration_ms bigint,
    success_http_status integer,
    UNIQUE (event_seq, route)
);
-- Indexes of open work only: delivered rows, nearly all of them, stay out of them.
CREATE INDEX deliveries_due ON deliveries (handler, due_at) WHERE state = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state = 'inflight';
CREATE INDEX deliveries_dead ON deliveries (id) WHERE state = 'dead';

-- Failed attempts, and successes moved out of their delivery's row by a replay.
CREATE TABLE attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    started_at  timestamptz NOT NULL,
    duration_ms bigint NOT NULL,
    outcome     text NOT NULL,
    http_status integer,
    error       text
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

-- Whatever makes a delivery pending and due now (an insert, a released lease, an expedite, a
-- replay, a retry due at once) tells every replica, at commit, which handler has work:
-- `NOTIFY hookline_due, '<handler>'`, once per handler and transaction. Replicas LISTEN and wake
-- that handler's worker (src/store/postgres/notices.rs).
CREATE FUNCTION hookline_notify_due() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hookline_due', handler)
    FROM (SELECT DISTINCT handler FROM changed WHERE state = 'pending' AND due_at <= now()) due;
    RETURN NULL;
END
$$;
CREATE TRIGGER deliveries_due_inserted AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION hookline_notify_due();
CREATE TRIGGER deliveries_due_updated AFTER UPDATE ON deliveries
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION hookline_notify_due();
