-- Users, groups, folders, memberships, tokens, settings and the change log.
-- Times are microseconds since the Unix epoch in both dialects.
CREATE TABLE users (
	id           INTEGER PRIMARY KEY,
	username     TEXT    NOT NULL,
	username_key TEXT    NOT NULL UNIQUE,
	email        TEXT    NOT NULL DEFAULT '',
	first_name   TEXT    NOT NULL DEFAULT '',
	last_name    TEXT    NOT NULL DEFAULT '',
	user_type    TEXT    NOT NULL,
	enabled      BOOLEAN NOT NULL,
	auth_method  TEXT    NOT NULL,
	source       TEXT    NOT NULL,
	source_id    TEXT    NOT NULL DEFAULT '',
	attributes   TEXT    NOT NULL DEFAULT '{}',
	created_at   BIGINT  NOT NULL,
	updated_at   BIGINT  NOT NULL,
	version      BIGINT  NOT NULL
);
CREATE INDEX users_source ON users (source, source_id);

CREATE TABLE folders (
	id         INTEGER PRIMARY KEY,
	path       TEXT   NOT NULL,
	path_key   TEXT   NOT NULL UNIQUE,
	attributes TEXT   NOT NULL DEFAULT '{}',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	version    BIGINT NOT NULL
);

CREATE TABLE groups (
	id          INTEGER PRIMARY KEY,
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
CREATE INDEX groups_folder ON groups (folder_key);
CREATE INDEX groups_source ON groups (source, source_id);

-- member_type leaves room for groups as members (nesting) without a rewrite.
CREATE TABLE memberships (
	group_id    BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
	member_type TEXT   NOT NULL,
	member_id   BIGINT NOT NULL,
	created_at  BIGINT NOT NULL,
	PRIMARY KEY (group_id, member_type, member_id)
) WITHOUT ROWID;
CREATE INDEX memberships_member ON memberships (member_type, member_id);

CREATE TABLE api_tokens (
	id           INTEGER PRIMARY KEY,
	user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name         TEXT   NOT NULL DEFAULT '',
	token_hash   TEXT   NOT NULL UNIQUE,
	hint         TEXT   NOT NULL DEFAULT '',
	created_at   BIGINT NOT NULL,
	last_used_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE settings (
	key        TEXT PRIMARY KEY,
	value      TEXT   NOT NULL,
	updated_at BIGINT NOT NULL
);

-- One row: the last sequence number handed out. Writers take their range at
-- the very end of their transaction; on PostgreSQL the row lock held until
-- commit makes sequence order equal commit order.
CREATE TABLE change_counter (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	last BIGINT NOT NULL
);
INSERT INTO change_counter (id, last) VALUES (1, 0);

CREATE TABLE changes (
	seq         INTEGER PRIMARY KEY, -- the rowid: no separate index
	at          BIGINT NOT NULL,
	kind        TEXT   NOT NULL,
	object_type TEXT   NOT NULL,
	object_id   BIGINT NOT NULL,
	object_name TEXT   NOT NULL,
	member_type TEXT,
	member_id   BIGINT,
	member_name TEXT,
	fields      TEXT,
	actor       TEXT   NOT NULL
);
