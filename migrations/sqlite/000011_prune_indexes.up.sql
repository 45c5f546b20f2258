-- Retention prunes oldest first, a batch at a time, inside the single writer's
-- transaction (docs/decisions/0026-sqlite-prune-indexes.md). Without an index on the
-- time it prunes by, every batch read every delivered effect, every fired or cancelled
-- timer and every old input joined with every completed instance, and sorted them, to
-- find the few hundred rows it deletes, while every other write waited. Each index
-- below orders exactly the rows its prune statement looks at; SQLite ends every index
-- entry with the rowid (rid), which the statements break ties by, so a batch reads
-- about as many rows as it deletes and sorts nothing. The same indexes as PostgreSQL's
-- migration 000008 (docs/decisions/0024-data-growth.md).
--
-- effects: written once more per effect, when it is delivered.
CREATE INDEX effects_delivered ON effects (delivered_at) WHERE status = 'delivered';
-- timers: the same, when a timer fires or is cancelled.
CREATE INDEX timers_done ON timers (updated_at) WHERE status IN ('fired', 'cancelled');
-- inputs: one more index entry per input, at the right edge of the index (created_at
-- grows with time).
CREATE INDEX inputs_created ON inputs (created_at);

-- instances: a list with a creation time range pages by (created_at, rid) through this
-- index (sqlstore.Filter.Keyset) instead of reading the range and sorting it.
CREATE INDEX instances_created ON instances (created_at);
