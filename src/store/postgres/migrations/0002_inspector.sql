-- Version 2: what the inspector reads (the same as the SQLite store's INSPECTOR, in
-- src/store/sqlite/schema.rs).

-- The contact and conversation an event is about (crate::envelope::KeyIds), for looking
-- events up by them; each indexed only where it is set. Events stored before stay without.
ALTER TABLE events ADD COLUMN contact_id text, ADD COLUMN conversation_id text;
CREATE INDEX events_contact ON events (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX events_conversation ON events (conversation_id) WHERE conversation_id IS NOT NULL;
-- Undecodable events are few: listing them walks this index instead of every event.
CREATE INDEX events_undecodable ON events (seq) WHERE decode_error IS NOT NULL;

-- Events counted per minute, source and type as they are stored, so that the activity chart
-- and the list of types seen read a few thousand rows rather than every event. Each insert
-- adds to one of 16 shards of its minute (by its first new event's seq), so that batches
-- committing at once, on one replica or several, seldom wait for each other's row lock;
-- reads add the shards up. Pruned with the events' ids.
CREATE TABLE event_minutes (
    minute      timestamptz NOT NULL,
    source      text NOT NULL,
    event_type  text NOT NULL,
    shard       smallint NOT NULL,
    events      bigint NOT NULL,
    undecodable bigint NOT NULL,
    PRIMARY KEY (minute, source, event_type, shard)
);
INSERT INTO event_minutes (minute, source, event_type, shard, events, undecodable)
SELECT date_trunc('minute', received_at, 'UTC'), source, event_type, 0, count(*),
       count(decode_error)
FROM events GROUP BY 1, 2, 3;
