-- A variable's current value is its latest history row: a write is one INSERT into
-- var_history instead of an INSERT plus an UPDATE of a separate row, so a step that
-- sets a variable touches one B-tree fewer. Read counts, which change on reads and are
-- flushed in batches, move to their own small table.
-- Defaults are stored as NULL (type 'step_result', scope 'run'), and created_at only on
-- the row that creates the variable: SQLite keeps NULLs in the record header, so the
-- common row costs no extra bytes.
ALTER TABLE var_history ADD COLUMN type TEXT;
ALTER TABLE var_history ADD COLUMN scope TEXT;
ALTER TABLE var_history ADD COLUMN secret INTEGER NOT NULL DEFAULT 0;
ALTER TABLE var_history ADD COLUMN created_at REAL;
UPDATE var_history SET
    type = (SELECT nullif(v.type, 'step_result') FROM vars v WHERE v.run_id = var_history.run_id AND v.name = var_history.name),
    scope = (SELECT nullif(v.scope, 'run') FROM vars v WHERE v.run_id = var_history.run_id AND v.name = var_history.name),
    secret = coalesce((SELECT v.secret FROM vars v WHERE v.run_id = var_history.run_id AND v.name = var_history.name), 0),
    created_at = CASE WHEN version = 1 THEN at END;
CREATE TABLE var_reads (
    run_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    accessed_at  REAL,
    access_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
INSERT INTO var_reads (run_id, name, accessed_at, access_count)
    SELECT run_id, name, accessed_at, access_count FROM vars WHERE access_count > 0;
DROP TABLE vars;
