-- What a run was started with (flow text and parsed data, inputs, environment
-- snapshot) is written once; it moves out of the runs row, which every commit
-- updates. SQLite rewrites a whole record on UPDATE, overflow pages included, so a
-- large flow text in that row made every step re-write tens of kilobytes.
CREATE TABLE run_specs (
    run_id       TEXT PRIMARY KEY,
    flow_text    TEXT NOT NULL,
    flow_path    TEXT,
    inputs       BLOB NOT NULL,
    env_snapshot TEXT,
    flow_data    BLOB
);
INSERT INTO run_specs (run_id, flow_text, flow_path, inputs, env_snapshot, flow_data)
    SELECT run_id, flow_text, flow_path, inputs, env_snapshot, flow_data FROM runs;
ALTER TABLE runs DROP COLUMN flow_text;
ALTER TABLE runs DROP COLUMN flow_path;
ALTER TABLE runs DROP COLUMN inputs;
ALTER TABLE runs DROP COLUMN env_snapshot;
ALTER TABLE runs DROP COLUMN flow_data;
