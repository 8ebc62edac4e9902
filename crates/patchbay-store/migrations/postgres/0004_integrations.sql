-- Integrations face (OpenInt) connections and events. Tenant = the organisation.
CREATE TABLE in_connections (
    tenant              TEXT    NOT NULL,
    id                  TEXT    NOT NULL,
    connector_name      TEXT    NOT NULL,
    connector_config_id TEXT    NOT NULL,
    customer_id         TEXT,
    integration_id      TEXT,
    display_name        TEXT,
    disabled            BOOLEAN NOT NULL,
    status              TEXT,
    status_message      TEXT,
    metadata            TEXT,
    settings_key_id     TEXT    NOT NULL,
    settings_blob       BYTEA    NOT NULL,
    expires_at          BIGINT,
    refreshable         BOOLEAN NOT NULL,
    version             BIGINT  NOT NULL,
    lock_owner          TEXT,
    lock_until          BIGINT,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX in_connections_id ON in_connections (id);
CREATE INDEX in_connections_order ON in_connections (tenant, updated_at, id);
CREATE INDEX in_connections_customer ON in_connections (tenant, customer_id);
CREATE INDEX in_connections_expiry ON in_connections (expires_at);

CREATE TABLE in_events (
    tenant      TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    data        TEXT   NOT NULL,
    customer_id TEXT,
    ts          BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX in_events_order ON in_events (tenant, ts, id);
