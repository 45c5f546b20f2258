-- An effect's own delivery policy (docs/decisions/0017-effect-policy.md). Zero means the
-- server's setting; durations are whole milliseconds.
--
-- effect_key tells apart the effects one transition emits per item of a list.
-- state_scoped effects are cancelled, undelivered, when their instance leaves the state
-- they were emitted into. on_dead locates the effect's declaration in the definition
-- the instance is pinned to when it has an on_dead input ('' when not), and
-- on_dead_outcome is that input's outcome once it ran.
ALTER TABLE effects ADD COLUMN effect_key TEXT NOT NULL DEFAULT '';
ALTER TABLE effects ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE effects ADD COLUMN initial_interval_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE effects ADD COLUMN max_interval_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE effects ADD COLUMN timeout_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE effects ADD COLUMN state_scoped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE effects ADD COLUMN on_dead TEXT NOT NULL DEFAULT '';
ALTER TABLE effects ADD COLUMN on_dead_outcome TEXT NOT NULL DEFAULT '';
