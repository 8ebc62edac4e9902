-- Seeded and provisioned objects of every face, keyed by tenant first.
CREATE TABLE records (
    tenant        TEXT   NOT NULL,
    kind          TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    data          TEXT   NOT NULL,
    secret_key_id TEXT,
    secret        BYTEA,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant, kind, id)
);
CREATE INDEX records_kind_id ON records (kind, id);

-- Bearer tokens and API keys: SHA-256 hashes only. A global directory
-- (looked up by hash before the tenant is known), replicated by tenant-sharded deployments.
CREATE TABLE credentials (
    token_hash     BYTEA   NOT NULL PRIMARY KEY,
    face           TEXT   NOT NULL,
    principal_kind TEXT   NOT NULL,
    principal_id   TEXT   NOT NULL,
    tenant         TEXT   NOT NULL,
    scopes         TEXT   NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX credentials_principal ON credentials (face, principal_kind, principal_id);

-- Durable background jobs (outbox + lease-based queue).
CREATE TABLE jobs (
    tenant       TEXT   NOT NULL,
    id           TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    payload      TEXT   NOT NULL,
    state        TEXT   NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at       BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX jobs_ready ON jobs (state, run_at);
