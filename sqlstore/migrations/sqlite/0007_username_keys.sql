-- Username keys become NFKC-normalised and lower-cased (usersync.UsernameKey):
-- recomputed in Go after this file (rekeyUsernames in migrate.go).
SELECT 1;
