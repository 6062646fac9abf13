-- usersync:foreign-keys-off
-- Ids are never handed out twice (AUTOINCREMENT): without it SQLite gives a
-- new row max(id)+1, so deleting the newest user freed its id for the next
-- one, and state kept by id (a provisioner's record of the Entra user, an
-- approval, a SCIM client's URL) reached another person. SQLite can only
-- add AUTOINCREMENT by rebuilding a table (its documented 12-step
-- procedure; the migrator turns foreign keys off on this connection, and
-- checks them before the commit). Each table's sequence starts above every
-- id it ever handed out that the change log remembers.
CREATE TABLE new_users (
	id               INTEGER PRIMARY KEY AUTOINCREMENT,
	username         TEXT    NOT NULL,
	username_key     TEXT    NOT NULL UNIQUE,
	email            TEXT    NOT NULL DEFAULT '',
	first_name       TEXT    NOT NULL DEFAULT '',
	last_name        TEXT    NOT NULL DEFAULT '',
	user_type        TEXT    NOT NULL,
	enabled          BOOLEAN NOT NULL,
	auth_method      TEXT    NOT NULL,
	source           TEXT    NOT NULL,
	source_id        TEXT    NOT NULL DEFAULT '',
	attributes       TEXT    NOT NULL DEFAULT '{}',
	created_at       BIGINT  NOT NULL,
	updated_at       BIGINT  NOT NULL,
	version          BIGINT  NOT NULL,
	soft_deleted     BOOLEAN NOT NULL DEFAULT FALSE,
	profile          TEXT    NOT NULL DEFAULT '{}',
	password_hash    TEXT    NOT NULL DEFAULT '',
	sign_in_failures INTEGER NOT NULL DEFAULT 0,
	locked_until     BIGINT  NOT NULL DEFAULT 0
);
INSERT INTO new_users (id, username, username_key, email, first_name, last_name, user_type, enabled, auth_method, source, source_id,
	attributes, created_at, updated_at, version, soft_deleted, profile, password_hash, sign_in_failures, locked_until)
SELECT id, username, username_key, email, first_name, last_name, user_type, enabled, auth_method, source, source_id,
	attributes, created_at, updated_at, version, soft_deleted, profile, password_hash, sign_in_failures, locked_until FROM users;
DROP TABLE users;
ALTER TABLE new_users RENAME TO users;
CREATE INDEX users_source ON users (source, source_id);

CREATE TABLE new_folders (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	path       TEXT   NOT NULL,
	path_key   TEXT   NOT NULL UNIQUE,
	attributes TEXT   NOT NULL DEFAULT '{}',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	version    BIGINT NOT NULL
);
INSERT INTO new_folders SELECT id, path, path_key, attributes, created_at, updated_at, version FROM folders;
DROP TABLE folders;
ALTER TABLE new_folders RENAME TO folders;

CREATE TABLE new_groups (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	name        TEXT   NOT NULL,
	name_key    TEXT   NOT NULL UNIQUE,
	folder_key  TEXT   NOT NULL DEFAULT '',
	description TEXT   NOT NULL DEFAULT '',
	alias       TEXT   NOT NULL DEFAULT '',
	source      TEXT   NOT NULL,
	source_id   TEXT   NOT NULL DEFAULT '',
	attributes  TEXT   NOT NULL DEFAULT '{}',
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	version     BIGINT NOT NULL
);
INSERT INTO new_groups SELECT id, name, name_key, folder_key, description, alias, source, source_id, attributes, created_at, updated_at, version FROM groups;
DROP TABLE groups;
ALTER TABLE new_groups RENAME TO groups;
CREATE INDEX groups_folder ON groups (folder_key);
CREATE INDEX groups_source ON groups (source, source_id);

CREATE TABLE new_api_tokens (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name         TEXT   NOT NULL DEFAULT '',
	token_hash   TEXT   NOT NULL UNIQUE,
	hint         TEXT   NOT NULL DEFAULT '',
	created_at   BIGINT NOT NULL,
	last_used_at BIGINT
);
INSERT INTO new_api_tokens SELECT id, user_id, name, token_hash, hint, created_at, last_used_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE new_api_tokens RENAME TO api_tokens;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE new_admin_sessions (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	token_hash TEXT    NOT NULL UNIQUE,
	user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	csrf       TEXT    NOT NULL,
	created_at BIGINT  NOT NULL,
	expires_at BIGINT  NOT NULL
);
INSERT INTO new_admin_sessions SELECT id, token_hash, user_id, csrf, created_at, expires_at FROM admin_sessions;
DROP TABLE admin_sessions;
ALTER TABLE new_admin_sessions RENAME TO admin_sessions;
CREATE INDEX admin_sessions_user ON admin_sessions (user_id);

CREATE TABLE new_roles (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	name        TEXT   NOT NULL,
	name_key    TEXT   NOT NULL UNIQUE,
	description TEXT   NOT NULL,
	created_at  BIGINT NOT NULL
);
INSERT INTO new_roles SELECT id, name, name_key, description, created_at FROM roles;
DROP TABLE roles;
ALTER TABLE new_roles RENAME TO roles;

CREATE TABLE new_mappings (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	name       TEXT    NOT NULL,
	name_key   TEXT    NOT NULL UNIQUE,
	position   INTEGER NOT NULL,
	condition  TEXT    NOT NULL,
	roles      TEXT    NOT NULL,
	created_at BIGINT  NOT NULL,
	updated_at BIGINT  NOT NULL,
	version    BIGINT  NOT NULL
);
INSERT INTO new_mappings SELECT id, name, name_key, position, condition, roles, created_at, updated_at, version FROM mappings;
DROP TABLE mappings;
ALTER TABLE new_mappings RENAME TO mappings;

CREATE TABLE new_runs (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	schedule   TEXT    NOT NULL,
	trig       TEXT    NOT NULL,
	started_by TEXT    NOT NULL,
	started_at BIGINT  NOT NULL,
	ended_at   BIGINT,
	outcome    TEXT    NOT NULL,
	output     TEXT    NOT NULL DEFAULT '',
	error      TEXT    NOT NULL DEFAULT '',
	attempt    INTEGER NOT NULL DEFAULT 1
);
INSERT INTO new_runs SELECT id, schedule, trig, started_by, started_at, ended_at, outcome, output, error, attempt FROM runs;
DROP TABLE runs;
ALTER TABLE new_runs RENAME TO runs;
CREATE INDEX runs_schedule ON runs (schedule, id);

-- Ids deleted before this upgrade that the change log still names stay
-- used: a sequence starts above them too.
DELETE FROM sqlite_sequence WHERE name = 'users';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'users', MAX(COALESCE((SELECT MAX(id) FROM users), 0), COALESCE((SELECT MAX(object_id) FROM changes WHERE object_type = 'user'), 0),
	COALESCE((SELECT MAX(member_id) FROM changes WHERE member_type = 'user'), 0));
DELETE FROM sqlite_sequence WHERE name = 'groups';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'groups', MAX(COALESCE((SELECT MAX(id) FROM groups), 0), COALESCE((SELECT MAX(object_id) FROM changes WHERE object_type = 'group'), 0),
	COALESCE((SELECT MAX(member_id) FROM changes WHERE member_type = 'group'), 0));
DELETE FROM sqlite_sequence WHERE name = 'folders';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'folders', MAX(COALESCE((SELECT MAX(id) FROM folders), 0), COALESCE((SELECT MAX(object_id) FROM changes WHERE object_type = 'folder'), 0));
DELETE FROM sqlite_sequence WHERE name = 'roles';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'roles', MAX(COALESCE((SELECT MAX(id) FROM roles), 0), COALESCE((SELECT MAX(object_id) FROM changes WHERE object_type = 'role'), 0));
DELETE FROM sqlite_sequence WHERE name = 'mappings';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'mappings', MAX(COALESCE((SELECT MAX(id) FROM mappings), 0), COALESCE((SELECT MAX(object_id) FROM changes WHERE object_type = 'mapping'), 0));
