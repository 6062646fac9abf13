-- Outbound provisioners: their settings (JSON), their client secret
-- (sealed, see secret.go), and the groups that failed for them.
CREATE TABLE provisioners (
	name       TEXT PRIMARY KEY,
	kind       TEXT   NOT NULL,
	config     TEXT   NOT NULL,
	secret     TEXT   NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	version    BIGINT NOT NULL
);
CREATE TABLE provisioner_items (
	provisioner  TEXT    NOT NULL REFERENCES provisioners (name) ON DELETE CASCADE,
	group_id     BIGINT  NOT NULL,
	group_name   TEXT    NOT NULL,
	failures     INTEGER NOT NULL,
	last_error   TEXT    NOT NULL,
	next_attempt BIGINT  NOT NULL,
	quarantined  BOOLEAN NOT NULL,
	PRIMARY KEY (provisioner, group_id)
);
