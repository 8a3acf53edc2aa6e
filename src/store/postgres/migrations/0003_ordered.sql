-- Version 3: ordered routes (docs/ordering.md; the same as the SQLite store's ORDERED, in
-- src/store/sqlite/schema.rs).

-- The key a delivery of an ordered route holds (NULL: unordered), and whether, once dead, it
-- keeps holding back later deliveries of its key (on_dead = "block") until replayed or skipped.
-- Deliveries stored before stay unordered.
ALTER TABLE deliveries ADD COLUMN order_key text,
    ADD COLUMN order_blocks boolean NOT NULL DEFAULT false;
-- The open deliveries that hold a key, by route, key and event: a claim finds whether an
-- earlier one of its key is open in one index probe.
CREATE INDEX deliveries_ordered ON deliveries (route, order_key, event_seq)
    WHERE state <> 'delivered' AND order_key IS NOT NULL;
