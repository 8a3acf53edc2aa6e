-- Version 4: deliveries held back behind the head of their key (docs/ordering.md, "What it
-- costs"; the same as the SQLite store's `held`, in src/store/sqlite/order.rs).

-- Whether a pending delivery of an ordered route waits behind an open one of its key. A claim
-- reads only the pending deliveries that are not held (deliveries_ready), so a key with
-- thousands queued costs no claim a walk over them. What already waits is held back here.
ALTER TABLE deliveries ADD COLUMN held boolean NOT NULL DEFAULT false;
UPDATE deliveries d SET held = true
WHERE d.state = 'pending' AND d.order_key IS NOT NULL AND EXISTS (
    SELECT 1 FROM deliveries p
    WHERE p.route = d.route AND p.order_key = d.order_key AND p.event_seq < d.event_seq
      AND p.state <> 'delivered' AND (p.state <> 'dead' OR p.order_blocks));
CREATE INDEX deliveries_ready ON deliveries (handler, due_at, id)
    WHERE state = 'pending' AND NOT held;
