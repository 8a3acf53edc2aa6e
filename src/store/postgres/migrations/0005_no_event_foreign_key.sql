-- Version 5: deliveries no longer reference events through a foreign key (docs/postgres.md,
-- "Batches that wait for company").
--
-- The key checked every delivery intake wrote with a query of its own on `events` (a row-level
-- trigger): 7–10 % of the server's CPU in a profile of the benchmark, and dropping it gave 5–19 %
-- more requests a second in three interleaved pairs. A delivery is only ever written by the
-- statement that writes its event, so the check guarded nothing the store does not already
-- keep. What the key also did, its ON DELETE CASCADE, moves to a statement-level trigger on
-- events: deleting events (pruning) deletes their deliveries, and those deliveries' attempts by
-- attempts' own key, in the same statement, and inserting costs nothing. Replicas of the
-- previous version that still run while this one migrates prune exactly as before.
DO $$
DECLARE
    key text;
BEGIN
    FOR key IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'deliveries'::regclass AND confrelid = 'events'::regclass
          AND contype = 'f'
    LOOP
        EXECUTE format('ALTER TABLE deliveries DROP CONSTRAINT %I', key);
    END LOOP;
END
$$;

CREATE FUNCTION hookline_delete_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM deliveries WHERE event_seq IN (SELECT seq FROM gone);
    RETURN NULL;
END
$$;
CREATE TRIGGER events_deleted AFTER DELETE ON events
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION hookline_delete_deliveries();
