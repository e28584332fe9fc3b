-- Automatic takeovers of a run whose owner died (see claim_run): `recoveries` counts
-- those made since the run last made progress (a checkpoint other than `step.started`
-- and `run.claimed`), `recovery_seq` is the run's seq right after the last one. A
-- person's `resume` clears both.
ALTER TABLE runs ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN recovery_seq INTEGER
