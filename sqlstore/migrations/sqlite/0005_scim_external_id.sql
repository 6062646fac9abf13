-- SCIM looks users up by externalId, kept as source_id of users the SCIM
-- client owns. A partial index serves that without slowing bulk pulls, whose
-- users (other sources) stay out of it.
CREATE INDEX users_scim_external ON users (source_id) WHERE source = 'scim';
