-- Soft-deleted is a state of its own, set only when a SCIM client
-- deactivates a user (a user disabled any other way is not soft-deleted).
-- Users soft-deleted before this migration are recognised by the prefix.
ALTER TABLE users ADD COLUMN soft_deleted BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE users SET soft_deleted = TRUE
WHERE NOT enabled AND source = 'scim'
  AND length(COALESCE((SELECT value FROM settings WHERE key = 'SCIM_SOFT_DELETE_PREFIX'), 'deleted_')) > 0
  AND substr(username, 1, length(COALESCE((SELECT value FROM settings WHERE key = 'SCIM_SOFT_DELETE_PREFIX'), 'deleted_')))
      = COALESCE((SELECT value FROM settings WHERE key = 'SCIM_SOFT_DELETE_PREFIX'), 'deleted_');

-- The source groups that brought a membership ("o365:<tenant>/<group id>"),
-- so that a directory group fed by several source groups keeps a member
-- while any of them holds it. A membership names them by their numbers in
-- source_groups, space-separated ('' for memberships made by hand): that
-- keeps membership rows, read whole for a group on every full sync, short.
CREATE TABLE source_groups (
	id  INTEGER PRIMARY KEY,
	key TEXT NOT NULL UNIQUE
);
ALTER TABLE memberships ADD COLUMN via TEXT NOT NULL DEFAULT '';

-- A pull finds the users it made by their id at the source before their
-- username (a user renamed or soft-deleted in between is the same user).
-- This index also serves SCIM's externalId lookups.
CREATE INDEX users_source ON users (source, source_id);
DROP INDEX users_scim_external;

-- Facts about the directory itself, e.g. that the demo made it.
CREATE TABLE directory_meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
