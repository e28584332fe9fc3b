-- Iterations of a loop shared with other workers: the run's owner publishes the
-- unfinished ones (open), any worker claims one (claimed, with a lease), runs its body
-- and stores the outcome (done); the owner commits it as an iteration and removes it.
CREATE TABLE loop_work (
    run_id   TEXT NOT NULL,
    loop_key TEXT NOT NULL,
    idx      INTEGER NOT NULL,
    state    TEXT NOT NULL,
    owner    TEXT,
    expires  DOUBLE PRECISION NOT NULL DEFAULT 0,
    outcome  TEXT,
    PRIMARY KEY (run_id, loop_key, idx)
);
CREATE INDEX loop_work_open ON loop_work (state, expires)
