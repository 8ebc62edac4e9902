-- Deep pages of the Network lists (backend.rs, DEFERRED_OFFSET): the page's keys are found
-- by an index-only scan, so the list's usual filters (active, partnerIds, clientIds) must
-- be in the index too, and on the partner side the tenant (the rows are then read by
-- primary key). These replace the two ordering indexes (same keys, more columns).
CREATE INDEX net_connections_client_page ON net_connections (tenant, created_at, id)
    INCLUDE (active, partner_id, client_id);
CREATE INDEX net_connections_partner_page ON net_connections (partner_tenant, created_at, id)
    INCLUDE (tenant, active, partner_id, client_id);
DROP INDEX net_connections_client_order;
DROP INDEX net_connections_partner_order;
