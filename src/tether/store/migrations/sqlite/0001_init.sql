-- Tether SQLite schema, version 1.
-- Step records double as the run's step events (see SQLiteStore.events), so a
-- step commit touches four B-trees: runs, vars, var_history and steps.
CREATE TABLE runs (
    run_id        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    flow_text     TEXT NOT NULL,
    flow_path     TEXT,
    inputs        BLOB NOT NULL,
    parent_id     TEXT,
    created_at    REAL NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    seq           INTEGER NOT NULL DEFAULT 0,
    cursor        TEXT,
    outputs       BLOB,
    error         TEXT,
    lease_owner   TEXT,
    lease_epoch   INTEGER NOT NULL DEFAULT 0,
    lease_expires REAL NOT NULL DEFAULT 0,
    durability    TEXT NOT NULL DEFAULT 'normal',
    env_snapshot  TEXT,
    attempt       INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX runs_by_status ON runs (status, run_id);

CREATE TABLE steps (
    run_id          TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    step_id         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    inputs          BLOB,
    result          BLOB,
    error           TEXT,
    meta            TEXT,
    started_at      REAL,
    finished_at     REAL,
    idempotency_key TEXT,
    PRIMARY KEY (run_id, seq, step_id)
) WITHOUT ROWID;

CREATE TABLE vars (
    run_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    value        BLOB NOT NULL,
    type         TEXT NOT NULL,
    scope        TEXT NOT NULL,
    version      INTEGER NOT NULL,
    source_step  TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    accessed_at  REAL,
    access_count INTEGER NOT NULL DEFAULT 0,
    secret       INTEGER NOT NULL DEFAULT 0,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

CREATE TABLE var_history (
    run_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    value       BLOB,
    source_step TEXT,
    at          REAL NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, name, version)
) WITHOUT ROWID;

-- Events other than step outcomes (run.*, step.started, var.set by the CLI/API...).
CREATE TABLE events (
    run_id  TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    type    TEXT NOT NULL,
    step_id TEXT,
    data    TEXT,
    at      REAL NOT NULL,
    PRIMARY KEY (run_id, seq, idx)
) WITHOUT ROWID;

CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
