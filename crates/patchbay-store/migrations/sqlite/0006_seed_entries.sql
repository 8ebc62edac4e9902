-- Seed entries as last applied: a start-up seed writes only the entries whose
-- digest differs (kind, resolved tenant, id, public data and secret part), so a
-- restart never undoes what the API changed or deleted. Whole documents are
-- recorded too (kind 'seed.document', id = the hex SHA-256 of their bytes).
CREATE TABLE seed_entries (
    kind       TEXT   NOT NULL,
    tenant     TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    digest     BLOB  NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (kind, tenant, id)
);
