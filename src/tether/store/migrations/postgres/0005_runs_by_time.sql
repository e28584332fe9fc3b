-- Runs are listed newest first by creation time (ties: greater run id first), with or
-- without a status, and claimed oldest first: both walk these indexes.
DROP INDEX runs_status;
CREATE INDEX runs_status ON runs (status, created_at, run_id);
CREATE INDEX runs_by_time ON runs (created_at, run_id);
