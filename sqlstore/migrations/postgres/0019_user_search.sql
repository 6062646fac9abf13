-- Substring search of users (the console's and the API's search box) from
-- a trigram index (pg_trgm) instead of a scan of every user. One GIN index
-- holds what the search compares, as it compares it: the username key, and
-- the email and full name folded as the search folds them (with ICU's root
-- collation when the server has it; see pgFold). The search narrows with a
-- LIKE on this expression, then checks each row exactly. pg_trgm is a
-- trusted extension (PostgreSQL 13+): a database owner may create it.
-- Where it cannot be created, the search scans as before.
DO $$
DECLARE
	folded text := 'lower((email || '' '' || first_name || '' '' || last_name)::text)';
BEGIN
	BEGIN
		CREATE EXTENSION IF NOT EXISTS pg_trgm;
	EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN
		RAISE NOTICE 'pg_trgm is not available (%): user search scans', SQLERRM;
		RETURN;
	END;
	IF EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu') THEN
		folded := 'lower((email || '' '' || first_name || '' '' || last_name)::text COLLATE "und-x-icu")';
	END IF;
	EXECUTE 'CREATE INDEX users_search ON users USING gin ((username_key || '' '' || ' || folded || ') gin_trgm_ops)';
END $$;
