-- Retention (`tether gc`): the rows that reference a blob (a value offloaded by the codec
-- is stored in its row as "h" + 64 hex digits, 65 bytes) are found through these partial
-- indexes, so deleting a run's blobs never scans a table; only rows of exactly 65 bytes
-- enter them. A run's children are found through runs_by_parent (a parent whose child is
-- kept is kept). New files also use auto_vacuum=FULL (set as the file is created,
-- see SQLiteStore), so that gc gives freed pages back to the file system.
CREATE INDEX IF NOT EXISTS blob_refs_steps_inputs ON steps (inputs) WHERE length(inputs) = 65;
CREATE INDEX IF NOT EXISTS blob_refs_steps_result ON steps (result) WHERE length(result) = 65;
CREATE INDEX IF NOT EXISTS blob_refs_var_history ON var_history (value) WHERE length(value) = 65;
CREATE INDEX IF NOT EXISTS blob_refs_loop_items ON loop_items (item) WHERE length(item) = 65;
CREATE INDEX IF NOT EXISTS blob_refs_iterations ON iterations (result) WHERE length(result) = 65;
CREATE INDEX IF NOT EXISTS blob_refs_run_inputs ON run_specs (inputs) WHERE length(inputs) = 65;
CREATE INDEX IF NOT EXISTS blob_refs_run_flow_data ON run_specs (flow_data) WHERE length(flow_data) = 65;
CREATE INDEX IF NOT EXISTS blob_refs_run_outputs ON runs (outputs) WHERE length(outputs) = 65;
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_id) WHERE parent_id IS NOT NULL
