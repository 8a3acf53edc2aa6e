-- Version 5: deliveries no longer reference events through a foreign key (docs/postgres.md,
-- "Batches that wait for company").
--
-- The key checked every delivery intake wrote with a query of its own on `events` (a row-level
-- trigger): 7–10 % of the server's CPU in a profile of the benchmark, and dropping it gave 5–19 %
-- more requests a second in three interleaved pairs. What it guaranteed is kept by the store
-- itself: a delivery is only ever written by the statement that writes its event, and pruning,
-- which relied on its ON DELETE CASCADE, now deletes an event's deliveries in the statement that
-- deletes the event (their attempts still go with them, by attempts' own key).
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
