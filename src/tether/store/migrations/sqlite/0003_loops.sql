-- A loop's collection, rendered once when the loop starts, one row per element,
-- so that a resumed loop iterates over exactly the same elements and a loop of a
-- million items is read back in batches, never held whole in memory.
CREATE TABLE loop_items (
    run_id   TEXT NOT NULL,
    loop_key TEXT NOT NULL,
    idx      INTEGER NOT NULL,
    item     BLOB NOT NULL,
    PRIMARY KEY (run_id, loop_key, idx)
) WITHOUT ROWID;

-- One record per loop iteration; aggregates are always computed from these rows.
CREATE TABLE iterations (
    run_id          TEXT NOT NULL,
    loop_key        TEXT NOT NULL,
    idx             INTEGER NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    result          BLOB,
    error           TEXT,
    seq             INTEGER NOT NULL,
    started_at      REAL,
    finished_at     REAL,
    PRIMARY KEY (run_id, loop_key, idx)
) WITHOUT ROWID;
