-- Files every replica can serve (files.backend = "database"): an exported file or a
-- run's log, by name, in chunks of at most 1 MiB (files.rs).
CREATE TABLE files (
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, seq)
);

-- Rate limits shared by replicas (shared.rs): each key's theoretical arrival time
-- (GCRA, ms since the epoch on the database's clock). Losing it loses nothing but
-- budgets already spent, so it is not written to the WAL.
CREATE UNLOGGED TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);
