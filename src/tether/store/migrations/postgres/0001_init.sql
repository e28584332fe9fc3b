-- Tether PostgreSQL schema, version 1: the same tables as SQLite's schema after its
-- migration 6 (see ../sqlite/), with PostgreSQL types.
CREATE TABLE runs (
    run_id        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    parent_id     TEXT,
    created_at    DOUBLE PRECISION NOT NULL,
    started_at    DOUBLE PRECISION,
    finished_at   DOUBLE PRECISION,
    seq           BIGINT NOT NULL DEFAULT 0,
    cursor        TEXT,
    outputs       BYTEA,
    error         TEXT,
    lease_owner   TEXT,
    lease_epoch   BIGINT NOT NULL DEFAULT 0,
    lease_expires DOUBLE PRECISION NOT NULL DEFAULT 0,
    durability    TEXT NOT NULL DEFAULT 'normal',
    attempt       INTEGER NOT NULL DEFAULT 1,
    control       TEXT
);
CREATE INDEX runs_status ON runs (status);
CREATE TABLE run_specs (
    run_id       TEXT PRIMARY KEY,
    flow_text    TEXT NOT NULL,
    flow_path    TEXT,
    inputs       BYTEA NOT NULL,
    env_snapshot TEXT,
    flow_data    BYTEA
);
CREATE TABLE steps (
    run_id          TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    step_id         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    inputs          BYTEA,
    result          BYTEA,
    error           TEXT,
    meta            TEXT,
    started_at      DOUBLE PRECISION,
    finished_at     DOUBLE PRECISION,
    idempotency_key TEXT,
    PRIMARY KEY (run_id, seq, step_id)
);
CREATE TABLE var_history (
    run_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    seq         BIGINT NOT NULL,
    value       BYTEA,
    source_step TEXT,
    at          DOUBLE PRECISION NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0,
    type        TEXT,
    scope       TEXT,
    secret      INTEGER NOT NULL DEFAULT 0,
    created_at  DOUBLE PRECISION,
    PRIMARY KEY (run_id, name, version)
);
CREATE TABLE var_reads (
    run_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    accessed_at  DOUBLE PRECISION,
    access_count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE events (
    run_id  TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    idx     INTEGER NOT NULL,
    type    TEXT NOT NULL,
    step_id TEXT,
    data    TEXT,
    at      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, seq, idx)
);
CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    data BYTEA NOT NULL
);
CREATE TABLE loop_items (
    run_id   TEXT NOT NULL,
    loop_key TEXT NOT NULL,
    idx      INTEGER NOT NULL,
    item     BYTEA NOT NULL,
    PRIMARY KEY (run_id, loop_key, idx)
);
CREATE TABLE iterations (
    run_id      TEXT NOT NULL,
    loop_key    TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    result      BYTEA,
    error       TEXT,
    seq         BIGINT NOT NULL,
    started_at  DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    PRIMARY KEY (run_id, loop_key, idx)
)
