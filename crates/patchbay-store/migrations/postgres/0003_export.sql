-- Export face (iTwin Export) connections and runs. Tenant = the iTwin.
CREATE TABLE ex_connections (
    tenant              TEXT   NOT NULL,
    id                  TEXT   NOT NULL,
    imodel_id           TEXT   NOT NULL,
    display_name        TEXT   NOT NULL,
    authentication_type TEXT   NOT NULL,
    owner_user_id       TEXT   NOT NULL,
    simulate            TEXT,
    last_run_id         TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX ex_connections_id ON ex_connections (id);
CREATE INDEX ex_connections_imodel ON ex_connections (tenant, imodel_id, created_at, id);

-- active_connection holds the connection id while the run is not Completed and
-- NULL afterwards: the unique index allows at most one active run per connection.
CREATE TABLE ex_runs (
    tenant            TEXT   NOT NULL,
    id                TEXT   NOT NULL,
    connection_id     TEXT   NOT NULL,
    active_connection TEXT,
    state             TEXT   NOT NULL,
    result            TEXT   NOT NULL,
    request           TEXT   NOT NULL,
    detail            TEXT   NOT NULL,
    start_at          BIGINT,
    end_at            BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX ex_runs_one_active ON ex_runs (active_connection);
CREATE INDEX ex_runs_connection ON ex_runs (tenant, connection_id, created_at, id);
