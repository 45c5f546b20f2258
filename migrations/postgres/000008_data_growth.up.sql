-- Retention prunes oldest first, a batch at a time (docs/decisions/0024-data-growth.md).
-- Without an index on the time it prunes by, every batch read every delivered effect,
-- every fired or cancelled timer and every completed instance, old or new, to find the
-- few hundred rows it deletes: at a million instances one batch took seconds, and a
-- pass with nothing left to prune cost as much. Each index below orders exactly the
-- rows its prune statement looks at, so a batch reads about as many rows as it deletes.
--
-- effects: written once more per effect, when it is delivered (that update changes
-- status, so every index of the row is written then anyway).
CREATE INDEX effects_delivered ON effects (delivered_at) WHERE status = 'delivered';
-- timers: the same, when a timer fires or is cancelled.
CREATE INDEX timers_done ON timers (updated_at) WHERE status IN ('fired', 'cancelled');
-- inputs: one more index entry per input, at the right edge of the index (created_at
-- grows with time), the cheapest place a btree can be written.
CREATE INDEX inputs_created ON inputs (created_at);

-- instances: a list with a creation time range pages by (created_at, rid) through this
-- index. Paged by rid, the first page of a range in the middle of the table read every
-- older instance first (190 ms at a million instances, growing with the table).
CREATE INDEX instances_created ON instances (created_at, rid) WHERE status <> '';

-- effects and timers: the pending rows, in rid order, for the list of pending ones
-- (migration 000002 left pending out of the status indexes; the due indexes are in due
-- order). With a backlog of 72,000 pending effects among a million, the first page of
-- GET /v1/effects?status=pending sorted them all (120 ms; 330 ms under load).
CREATE INDEX effects_pending ON effects (rid) WHERE status = 'pending';
CREATE INDEX timers_pending ON timers (rid) WHERE status = 'pending';
