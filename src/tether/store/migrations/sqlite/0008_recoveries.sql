-- Automatic takeovers of a run whose owner died (see claim_run): `recoveries` counts
-- those made since the run last made progress (a checkpoint other than `step.started`
-- and `run.claimed`), `recovery_seq` is the run's seq right after the last one. A
-- person's `resume` clears both.
ALTER TABLE runs ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN recovery_seq INTEGER;
-- The process groups (leader pid and start time, and the machine) of the steps the
-- run's owner is running, so that whoever takes the run over kills what is left of
-- them before running the step again (see tether.procs). Written when a step starts
-- a process, not by commits.
ALTER TABLE runs ADD COLUMN processes TEXT
