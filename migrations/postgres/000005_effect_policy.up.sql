-- An effect's own delivery policy (docs/decisions/0017-effect-policy.md). Zero means the
-- server's setting; durations are whole milliseconds.
--
-- effect_key tells apart the effects one transition emits per item of a list.
-- state_scoped effects are cancelled, undelivered, when their instance leaves the state
-- they were emitted into. on_dead locates the effect's declaration in the definition
-- the instance is pinned to when it has an on_dead input ('' when not), and
-- on_dead_outcome is that input's outcome once it ran.
ALTER TABLE effects
    ADD COLUMN effect_key          text    NOT NULL DEFAULT '',
    ADD COLUMN max_attempts        integer NOT NULL DEFAULT 0,
    ADD COLUMN initial_interval_ms bigint  NOT NULL DEFAULT 0,
    ADD COLUMN max_interval_ms     bigint  NOT NULL DEFAULT 0,
    ADD COLUMN timeout_ms          bigint  NOT NULL DEFAULT 0,
    ADD COLUMN state_scoped        boolean NOT NULL DEFAULT false,
    ADD COLUMN on_dead             text    NOT NULL DEFAULT '',
    ADD COLUMN on_dead_outcome     text    NOT NULL DEFAULT '';
