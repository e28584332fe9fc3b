-- The flow as parsed and validated when the run started (JSON, compressed by the
-- codec), so that resuming a run with thousands of steps rebuilds its model from
-- JSON instead of parsing and validating the YAML text again.
ALTER TABLE runs ADD COLUMN flow_data BLOB;
