DROP INDEX timers_status;
CREATE INDEX timers_status ON timers (status, rid);
DROP INDEX effects_status;
CREATE INDEX effects_status ON effects (status, rid);

ALTER TABLE inputs ADD CONSTRAINT inputs_rid_key UNIQUE (rid);

ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD CONSTRAINT events_workflow_type_workflow_id_seq_key
    UNIQUE (workflow_type, workflow_id, seq);
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (gid);

DROP INDEX instances_status;
DROP INDEX instances_state;
DROP INDEX instances_type;
DROP INDEX instances_rid;
ALTER TABLE instances ADD CONSTRAINT instances_rid_key UNIQUE (rid);
CREATE INDEX instances_type ON instances (type, rid);
CREATE INDEX instances_state ON instances (type, state_name, rid);
CREATE INDEX instances_status ON instances (status, rid);
