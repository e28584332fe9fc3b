-- The digest of a run's flow data as it was validated when the run started (or switched
-- flows): a resume whose stored data still has this digest builds the flow's steps as it
-- reaches them instead of all at once (see tether.flow.load_trusted); NULL, or any other
-- digest (the data was changed in the store, or Tether's flow model changed), means the
-- whole flow is validated again first, as before.
ALTER TABLE run_specs ADD COLUMN IF NOT EXISTS flow_digest TEXT;
