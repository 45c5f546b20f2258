-- ironflow schema for SQLite. Times are INTEGER microseconds since the Unix epoch (UTC);
-- JSON is compact TEXT.

CREATE TABLE definitions (
    type       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (type, version)
);

CREATE TABLE instances (
    rid                INTEGER PRIMARY KEY AUTOINCREMENT,
    type               TEXT    NOT NULL,
    id                 TEXT    NOT NULL,
    definition_version INTEGER NOT NULL,
    state_name         TEXT    NOT NULL,
    state_data         TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    version            INTEGER NOT NULL,
    unique_key         TEXT    NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    completed_at       INTEGER,
    UNIQUE (type, id)
);

-- At most one running instance per (type, unique_key); completing frees the key.
CREATE UNIQUE INDEX instances_running_unique_key
    ON instances (type, unique_key) WHERE status = 'running' AND unique_key <> '';
CREATE INDEX instances_state ON instances (type, state_name);
CREATE INDEX instances_status ON instances (status);

CREATE TABLE events (
    rid           INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_type TEXT    NOT NULL,
    workflow_id   TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    type          TEXT    NOT NULL,
    from_state    TEXT    NOT NULL,
    to_state      TEXT    NOT NULL,
    data          TEXT,
    input_type    TEXT    NOT NULL,
    input_id      TEXT    NOT NULL,
    recorded_at   INTEGER NOT NULL,
    UNIQUE (workflow_type, workflow_id, seq),
    FOREIGN KEY (workflow_type, workflow_id) REFERENCES instances (type, id) ON DELETE CASCADE
);

CREATE TABLE inputs (
    rid             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    workflow_type   TEXT    NOT NULL,
    workflow_id     TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL DEFAULT '',
    request_hash    TEXT    NOT NULL DEFAULT '',
    type            TEXT    NOT NULL,
    data            TEXT,
    source          TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    reason          TEXT    NOT NULL DEFAULT '',
    version         INTEGER NOT NULL,
    response        TEXT,
    created_at      INTEGER NOT NULL
);

CREATE INDEX inputs_instance ON inputs (workflow_type, workflow_id, rid);
CREATE UNIQUE INDEX inputs_idempotency
    ON inputs (workflow_type, workflow_id, idempotency_key) WHERE idempotency_key <> '';

CREATE TABLE effects (
    rid             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    workflow_type   TEXT    NOT NULL,
    workflow_id     TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    payload         TEXT,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_by       TEXT    NOT NULL DEFAULT '',
    locked_until    INTEGER,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);

CREATE INDEX effects_due ON effects (next_attempt_at) WHERE status = 'pending';
CREATE INDEX effects_status ON effects (status, workflow_type);
CREATE INDEX effects_instance ON effects (workflow_type, workflow_id);

CREATE TABLE effect_attempts (
    effect_id      TEXT    NOT NULL REFERENCES effects (id) ON DELETE CASCADE,
    number         INTEGER NOT NULL,
    started_at     INTEGER NOT NULL,
    duration_us    INTEGER NOT NULL,
    status_code    INTEGER NOT NULL,
    error          TEXT    NOT NULL DEFAULT '',
    response       TEXT    NOT NULL DEFAULT '',
    routed_outcome TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (effect_id, number)
);

CREATE TABLE timers (
    rid             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    workflow_type   TEXT    NOT NULL,
    workflow_id     TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    fire_at         INTEGER NOT NULL,
    input_type      TEXT    NOT NULL,
    input_data      TEXT,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_by       TEXT    NOT NULL DEFAULT '',
    locked_until    INTEGER,
    last_error      TEXT    NOT NULL DEFAULT '',
    outcome         TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    fired_at        INTEGER
);

-- A key is unique among an instance's pending timers; scheduling it again replaces it.
CREATE UNIQUE INDEX timers_pending_key
    ON timers (workflow_type, workflow_id, key) WHERE status = 'pending';
CREATE INDEX timers_due ON timers (next_attempt_at) WHERE status = 'pending';
CREATE INDEX timers_status ON timers (status, workflow_type);

CREATE TABLE webhooks (
    workflow_type TEXT    PRIMARY KEY,
    url           TEXT    NOT NULL,
    secrets       TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
