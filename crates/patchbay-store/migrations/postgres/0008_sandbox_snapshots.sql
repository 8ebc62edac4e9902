-- Sandbox snapshots (docs/sandbox.md): one row per saved state; the rows of each
-- data table are copied to a table named sbx_<id>_<table>.
CREATE TABLE sandbox_snapshots (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    row_counts TEXT NOT NULL
);
