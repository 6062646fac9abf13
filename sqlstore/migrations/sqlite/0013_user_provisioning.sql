-- User provisioning (seed 004): roles and who holds them by hand,
-- mappings that give roles by condition, what each user provisioner wrote
-- of each user (kept after the user leaves the directory: its Entra user
-- must still be deprovisioned), approvals and the provisioning log.
CREATE TABLE roles (
	id          INTEGER PRIMARY KEY,
	name        TEXT   NOT NULL,
	name_key    TEXT   NOT NULL UNIQUE,
	description TEXT   NOT NULL,
	created_at  BIGINT NOT NULL
);
CREATE TABLE user_roles (
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role_id BIGINT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
	PRIMARY KEY (role_id, user_id)
);
CREATE INDEX user_roles_user ON user_roles (user_id);
CREATE TABLE mappings (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	name_key   TEXT    NOT NULL UNIQUE,
	position   INTEGER NOT NULL,
	condition  TEXT    NOT NULL,
	roles      TEXT    NOT NULL,
	created_at BIGINT  NOT NULL,
	updated_at BIGINT  NOT NULL,
	version    BIGINT  NOT NULL
);
CREATE TABLE provisioned_users (
	provisioner  TEXT    NOT NULL REFERENCES provisioners (name) ON DELETE CASCADE,
	user_id      BIGINT  NOT NULL,
	username     TEXT    NOT NULL,
	remote_id    TEXT    NOT NULL,
	state        TEXT    NOT NULL,
	sent         TEXT    NOT NULL,
	sent_key     TEXT    NOT NULL,
	licenses     TEXT    NOT NULL,
	remote_groups TEXT   NOT NULL,
	failures     INTEGER NOT NULL,
	last_error   TEXT    NOT NULL,
	next_attempt BIGINT  NOT NULL,
	quarantined  BOOLEAN NOT NULL,
	updated_at   BIGINT  NOT NULL,
	PRIMARY KEY (provisioner, user_id)
);
CREATE TABLE approvals (
	id          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: an id an administrator read stays that action's
	provisioner TEXT   NOT NULL REFERENCES provisioners (name) ON DELETE CASCADE,
	user_id     BIGINT NOT NULL,
	username    TEXT   NOT NULL,
	action      TEXT   NOT NULL,
	reason      TEXT   NOT NULL,
	detail      TEXT   NOT NULL,
	plan_key    TEXT   NOT NULL,
	status      TEXT   NOT NULL,
	created_at  BIGINT NOT NULL,
	decided_by  TEXT   NOT NULL,
	decided_at  BIGINT NOT NULL
);
CREATE INDEX approvals_pending ON approvals (provisioner, status, user_id);
CREATE TABLE provisioning_log (
	id          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: an id an administrator read stays that action's
	provisioner TEXT   NOT NULL REFERENCES provisioners (name) ON DELETE CASCADE,
	run         TEXT   NOT NULL,
	at          BIGINT NOT NULL,
	user_id     BIGINT NOT NULL,
	username    TEXT   NOT NULL,
	group_name  TEXT   NOT NULL, -- group provisioners: the group acted on (username: the member)
	action      TEXT   NOT NULL,
	reason      TEXT   NOT NULL,
	status      TEXT   NOT NULL,
	error_code  TEXT   NOT NULL,
	error       TEXT   NOT NULL,
	modified    TEXT   NOT NULL
);
CREATE INDEX provisioning_log_user ON provisioning_log (provisioner, username);
CREATE INDEX provisioning_log_run ON provisioning_log (provisioner, run);
CREATE INDEX provisioning_log_group ON provisioning_log (provisioner, group_name);
