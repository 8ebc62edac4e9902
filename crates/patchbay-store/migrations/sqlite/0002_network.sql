-- Network face (BitGo OES) connections. Tenant = the client's enterprise;
-- partner_tenant = the partner's enterprise (the partner-side listing key).
CREATE TABLE net_connections (
    tenant                 TEXT    NOT NULL,
    id                     TEXT    NOT NULL,
    partner_tenant         TEXT    NOT NULL,
    client_id              TEXT    NOT NULL,
    partner_id             TEXT    NOT NULL,
    name                   TEXT    NOT NULL,
    active                 BOOLEAN NOT NULL,
    nonce                  TEXT    NOT NULL,
    network_account_id     TEXT    NOT NULL,
    proof                  TEXT    NOT NULL,
    partners_connection_id TEXT,
    partners_client_id     TEXT,
    initialized            BOOLEAN NOT NULL,
    key_schema             TEXT    NOT NULL,
    key_key_id             TEXT    NOT NULL,
    key_blob               BLOB    NOT NULL,
    created_at             BIGINT  NOT NULL,
    updated_at             BIGINT  NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX net_connections_nonce ON net_connections (tenant, client_id, nonce);
CREATE INDEX net_connections_client_order ON net_connections (tenant, created_at, id);
CREATE INDEX net_connections_partner_order ON net_connections (partner_tenant, created_at, id);
CREATE INDEX net_connections_partner_id ON net_connections (partner_tenant, id);
