-- The OES ledger (issue 19): balances per account and currency, and every
-- allocation, deallocation, settlement, transfer, dispute and deposit as one
-- row each. Rules live in patchbay-core (ledger.rs); writes are all-or-nothing
-- with a version per row (optimistic: a stale write changes nothing).
CREATE TABLE net_balances (
    account    TEXT   NOT NULL,
    currency   TEXT   NOT NULL,
    available  TEXT   NOT NULL,
    held       TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account, currency)
);
CREATE TABLE net_ledger (
    kind           TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    client_tenant  TEXT,
    partner_tenant TEXT    NOT NULL,
    partner_id     TEXT,
    client_id      TEXT,
    connection_id  TEXT,
    parent_id      TEXT,
    subtype        TEXT,
    status         TEXT    NOT NULL,
    currency       TEXT,
    external_id    TEXT,
    external_key   TEXT,
    parties        TEXT    NOT NULL,
    flag           BOOLEAN NOT NULL,
    version        BIGINT  NOT NULL,
    data           TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX net_ledger_external_key ON net_ledger (kind, external_key);
CREATE INDEX net_ledger_partner_order ON net_ledger (kind, partner_tenant, created_at, id);
CREATE INDEX net_ledger_client_order ON net_ledger (kind, client_tenant, created_at, id);
CREATE INDEX net_ledger_parent ON net_ledger (kind, parent_id);
-- Nonces of signed ledger requests, never accepted twice within a scope.
CREATE TABLE net_nonces (
    scope      TEXT   NOT NULL,
    nonce      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, nonce)
);
