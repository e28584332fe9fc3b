-- The outcomes workers handed back, by loop: the run's owner looks for them every few
-- milliseconds while its loop runs (pg_statements.WORK_COLLECT). Without this index each
-- look read every row of the loop still in loop_work (3.5 ms a look at 10,000 iterations).
CREATE INDEX IF NOT EXISTS loop_work_done ON loop_work (run_id, loop_key, idx) WHERE state = 'done';
