-- Shared variables (outlive runs; compare-and-set; immutable ones) and named locks.
CREATE TABLE shared_vars (
    name       TEXT PRIMARY KEY,
    value      BLOB,
    version    INTEGER NOT NULL,
    immutable  INTEGER NOT NULL DEFAULT 0,
    deleted    INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE TABLE locks (
    name    TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,
    expires REAL NOT NULL
)
