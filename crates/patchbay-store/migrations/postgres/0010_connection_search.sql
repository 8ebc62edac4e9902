-- Trigram indexes behind Integrations `search_query` (the condition is
-- LOWER(column) LIKE '%…%' over id, customer_id and connector_name): with pg_trgm a
-- search of three characters or more reads the rows holding its trigrams instead of
-- every connection of the organisation. pg_trgm ships with PostgreSQL (contrib) and is a
-- trusted extension (PostgreSQL 13+: the database's owner may create it). Where it
-- cannot be created, the migration still applies and searches scan, as before.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'pg_trgm unavailable (%): Integrations search_query will scan', SQLERRM;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX in_connections_search_id ON in_connections USING gin (LOWER(id) gin_trgm_ops);
        CREATE INDEX in_connections_search_customer
            ON in_connections USING gin (LOWER(COALESCE(customer_id, '')) gin_trgm_ops);
        CREATE INDEX in_connections_search_connector ON in_connections USING gin (LOWER(connector_name) gin_trgm_ops);
    END IF;
END
$$;
