-- Fewer index writes per input (docs/decisions/0007-postgres-round-trips.md). Every
-- index below was checked against the queries that read it; what goes is what only
-- cost writes.
--
-- instances: a new instance is first inserted as a placeholder (status '') to lock it,
-- then updated into the real row, so every index on instances was written twice. The
-- list indexes now leave placeholders out (ListInstances asks for status <> ''), and the
-- unique constraint on rid, which only ordered the unfiltered list, becomes such a
-- partial index too: the identity column is unique by construction.
DROP INDEX instances_type;
DROP INDEX instances_state;
DROP INDEX instances_status;
ALTER TABLE instances DROP CONSTRAINT instances_rid_key;
CREATE INDEX instances_rid ON instances (rid) WHERE status <> '';
CREATE INDEX instances_type ON instances (type, rid) WHERE status <> '';
CREATE INDEX instances_state ON instances (type, state_name, rid) WHERE status <> '';
CREATE INDEX instances_status ON instances (status, rid) WHERE status <> '';

-- events: nothing reads by gid; the key every read uses, (workflow_type, workflow_id,
-- seq), becomes the primary key, so one index is written per event instead of two.
-- (Postgres cannot hand a constraint's index to another constraint: the key's index is
-- built again, once, under this migration's lock.)
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events DROP CONSTRAINT events_workflow_type_workflow_id_seq_key;
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (workflow_type, workflow_id, seq);

-- inputs: ListInputs pages an instance's inputs by inputs_instance (workflow_type,
-- workflow_id, rid); nothing else reads by rid.
ALTER TABLE inputs DROP CONSTRAINT inputs_rid_key;

-- effects and timers are inserted pending, and a pending row is listed through its due
-- index (effects_due, timers_due). The status indexes keep only the other statuses.
DROP INDEX effects_status;
CREATE INDEX effects_status ON effects (status, rid) WHERE status <> 'pending';
DROP INDEX timers_status;
CREATE INDEX timers_status ON timers (status, rid) WHERE status <> 'pending';
