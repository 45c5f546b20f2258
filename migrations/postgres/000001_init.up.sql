-- ironflow schema for PostgreSQL. Times are timestamptz (microseconds).
--
-- JSON the store is handed (definitions, state and event data, inputs, payloads) is
-- `json`, not `jsonb`: json keeps the compact text exactly as written (the key order a
-- client chose survives, as in the SQLite store) and accepts every valid JSON document,
-- whereas jsonb rejects the escape \u0000, which would turn a client's input into a
-- server error. Nothing queries inside these documents. An input's response is bytea,
-- because an idempotent replay must return it byte for byte.
--
-- Every list pages over an internal identity column (rid), exposed only as an opaque
-- cursor.

CREATE TABLE definitions (
    type       text        NOT NULL,
    version    integer     NOT NULL,
    body       json        NOT NULL,
    hash       text        NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (type, version)
);

CREATE TABLE instances (
    rid                bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    type               text        NOT NULL,
    id                 text        NOT NULL,
    definition_version integer     NOT NULL,
    state_name         text        NOT NULL,
    state_data         json        NOT NULL,
    -- '' marks the placeholder row Execute inserts to lock an instance that does not
    -- exist yet; it is never committed.
    status             text        NOT NULL,
    version            bigint      NOT NULL,
    unique_key         text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    completed_at       timestamptz,
    PRIMARY KEY (type, id)
);

-- At most one running instance per (type, unique_key); completing frees the key.
CREATE UNIQUE INDEX instances_running_unique_key
    ON instances (type, unique_key) WHERE status = 'running' AND unique_key <> '';
CREATE INDEX instances_type ON instances (type, rid);
CREATE INDEX instances_state ON instances (type, state_name, rid);
CREATE INDEX instances_status ON instances (status, rid);

CREATE TABLE events (
    -- The global sequence of all events, in insertion order.
    gid           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_type text        NOT NULL,
    workflow_id   text        NOT NULL,
    seq           bigint      NOT NULL,
    type          text        NOT NULL,
    from_state    text        NOT NULL,
    to_state      text        NOT NULL,
    data          json,
    input_type    text        NOT NULL,
    input_id      text        NOT NULL,
    recorded_at   timestamptz NOT NULL,
    UNIQUE (workflow_type, workflow_id, seq)
);

CREATE TABLE inputs (
    rid             bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    id              text        PRIMARY KEY,
    workflow_type   text        NOT NULL,
    workflow_id     text        NOT NULL,
    idempotency_key text        NOT NULL DEFAULT '',
    request_hash    text        NOT NULL DEFAULT '',
    type            text        NOT NULL,
    data            json,
    source          text        NOT NULL,
    outcome         text        NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    version         bigint      NOT NULL,
    response        bytea,
    created_at      timestamptz NOT NULL
);

CREATE INDEX inputs_instance ON inputs (workflow_type, workflow_id, rid);
CREATE UNIQUE INDEX inputs_idempotency
    ON inputs (workflow_type, workflow_id, idempotency_key) WHERE idempotency_key <> '';

CREATE TABLE effects (
    rid             bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    id              text        PRIMARY KEY,
    workflow_type   text        NOT NULL,
    workflow_id     text        NOT NULL,
    seq             bigint      NOT NULL,
    name            text        NOT NULL,
    payload         json,
    status          text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    locked_by       text        NOT NULL DEFAULT '',
    locked_until    timestamptz,
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    delivered_at    timestamptz
);

CREATE INDEX effects_due ON effects (next_attempt_at) WHERE status = 'pending';
CREATE INDEX effects_status ON effects (status, rid);
CREATE INDEX effects_instance ON effects (workflow_type, workflow_id, rid);

CREATE TABLE effect_attempts (
    effect_id      text        NOT NULL REFERENCES effects (id) ON DELETE CASCADE,
    number         integer     NOT NULL,
    started_at     timestamptz NOT NULL,
    duration_ns    bigint      NOT NULL,
    status_code    integer     NOT NULL,
    error          text        NOT NULL DEFAULT '',
    -- bytea: a response body is not necessarily valid UTF-8.
    response       bytea       NOT NULL DEFAULT '',
    routed_outcome text        NOT NULL DEFAULT '',
    PRIMARY KEY (effect_id, number)
);

CREATE TABLE timers (
    rid             bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    id              text        PRIMARY KEY,
    workflow_type   text        NOT NULL,
    workflow_id     text        NOT NULL,
    key             text        NOT NULL,
    fire_at         timestamptz NOT NULL,
    input_type      text        NOT NULL,
    input_data      json,
    status          text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    locked_by       text        NOT NULL DEFAULT '',
    locked_until    timestamptz,
    last_error      text        NOT NULL DEFAULT '',
    outcome         text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    fired_at        timestamptz
);

-- A key is unique among an instance's pending timers; scheduling it again replaces it.
CREATE UNIQUE INDEX timers_pending_key
    ON timers (workflow_type, workflow_id, key) WHERE status = 'pending';
CREATE INDEX timers_due ON timers (next_attempt_at) WHERE status = 'pending';
CREATE INDEX timers_status ON timers (status, rid);
CREATE INDEX timers_instance ON timers (workflow_type, workflow_id, rid);

CREATE TABLE webhooks (
    workflow_type text        PRIMARY KEY,
    url           text        NOT NULL,
    secrets       jsonb       NOT NULL,
    status        text        NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
