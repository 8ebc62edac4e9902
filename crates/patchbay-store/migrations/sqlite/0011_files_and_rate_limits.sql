-- Files kept in the database (files.backend = "database"): an exported file or a
-- run's log, by name, in chunks of at most 1 MiB (files.rs).
CREATE TABLE files (
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, seq)
);

-- Rate-limit budgets kept in the database (shared.rs): each key's theoretical
-- arrival time (GCRA, ms since the epoch).
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);
