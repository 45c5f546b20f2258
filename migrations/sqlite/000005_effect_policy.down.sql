ALTER TABLE effects DROP COLUMN effect_key;
ALTER TABLE effects DROP COLUMN max_attempts;
ALTER TABLE effects DROP COLUMN initial_interval_ms;
ALTER TABLE effects DROP COLUMN max_interval_ms;
ALTER TABLE effects DROP COLUMN timeout_ms;
ALTER TABLE effects DROP COLUMN state_scoped;
ALTER TABLE effects DROP COLUMN on_dead;
ALTER TABLE effects DROP COLUMN on_dead_outcome;
