-- Requests from outside the owning process: 'pause' (stop after the current step)
-- or 'cancel' (stop now). Cleared when the run is taken over.
ALTER TABLE runs ADD COLUMN control TEXT;
