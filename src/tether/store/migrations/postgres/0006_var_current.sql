-- Reads cost O(state), not O(history): each variable's current version (and when it was
-- last created) is one small row, kept by a trigger in the transaction of every history
-- insert, whichever code path writes it. Before this, the current value was found by a
-- correlated max(version) over every history row of the run, and its created_at by
-- walking back through its versions. Existing schemas are backfilled here.
CREATE TABLE var_current (
    run_id     TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at DOUBLE PRECISION,
    PRIMARY KEY (run_id, name)
);
INSERT INTO var_current (run_id, name, version, created_at)
    SELECT h.run_id, h.name, max(h.version),
           (SELECT y.created_at FROM var_history y WHERE y.run_id = h.run_id AND y.name = h.name
            AND y.created_at IS NOT NULL ORDER BY y.version DESC LIMIT 1)
    FROM var_history h GROUP BY h.run_id, h.name;
CREATE FUNCTION tether_var_current() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO var_current (run_id, name, version, created_at)
    VALUES (NEW.run_id, NEW.name, NEW.version, NEW.created_at)
    ON CONFLICT (run_id, name) DO UPDATE SET version = excluded.version,
        created_at = coalesce(excluded.created_at, var_current.created_at);
    RETURN NULL;
END $$;
CREATE TRIGGER var_history_current AFTER INSERT ON var_history
    FOR EACH ROW EXECUTE FUNCTION tether_var_current();
