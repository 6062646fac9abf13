-- No query reads users by (source, source_id); the index only slowed bulk creates.
DROP INDEX users_source;
