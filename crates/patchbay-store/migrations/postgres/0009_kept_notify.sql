-- Every replica keeps some reads in memory (kept.rs); a write on any replica must drop them
-- on all. Each statement that changes a table whose reads are kept notifies the channel
-- `patchbay_kept` (delivered at commit, once per transaction); every replica listens
-- (backend.rs, listen_for_writes) and keeps nothing while it cannot.
CREATE FUNCTION patchbay_kept_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('patchbay_kept', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER records_kept AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON records
    FOR EACH STATEMENT EXECUTE FUNCTION patchbay_kept_changed();
CREATE TRIGGER credentials_kept AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credentials
    FOR EACH STATEMENT EXECUTE FUNCTION patchbay_kept_changed();
CREATE TRIGGER net_connections_kept AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON net_connections
    FOR EACH STATEMENT EXECUTE FUNCTION patchbay_kept_changed();
CREATE TRIGGER ex_connections_kept AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ex_connections
    FOR EACH STATEMENT EXECUTE FUNCTION patchbay_kept_changed();
CREATE TRIGGER in_connections_kept AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON in_connections
    FOR EACH STATEMENT EXECUTE FUNCTION patchbay_kept_changed();
