-- A trigram index over what search_query matches (id, customer_id, connector_name),
-- so that a selective search does not read every connection of the organisation.
-- External content: the index holds trigrams only, rows stay in in_connections and
-- its rowid is the index's rowid. detail=none: no positions; a search is the AND of
-- its trigrams and every candidate is checked against the exact LIKE condition.
CREATE VIRTUAL TABLE in_connections_search USING fts5(
    id, customer_id, connector_name,
    content = 'in_connections', tokenize = 'trigram', detail = 'none'
);
INSERT INTO in_connections_search (in_connections_search) VALUES ('rebuild');

CREATE TRIGGER in_connections_search_insert AFTER INSERT ON in_connections BEGIN
    INSERT INTO in_connections_search (rowid, id, customer_id, connector_name)
    VALUES (new.rowid, new.id, new.customer_id, new.connector_name);
END;
CREATE TRIGGER in_connections_search_delete AFTER DELETE ON in_connections BEGIN
    INSERT INTO in_connections_search (in_connections_search, rowid, id, customer_id, connector_name)
    VALUES ('delete', old.rowid, old.id, old.customer_id, old.connector_name);
END;
CREATE TRIGGER in_connections_search_update AFTER UPDATE OF id, customer_id, connector_name ON in_connections BEGIN
    INSERT INTO in_connections_search (in_connections_search, rowid, id, customer_id, connector_name)
    VALUES ('delete', old.rowid, old.id, old.customer_id, old.connector_name);
    INSERT INTO in_connections_search (rowid, id, customer_id, connector_name)
    VALUES (new.rowid, new.id, new.customer_id, new.connector_name);
END;
