-- Cursors of change-log consumers (outbound provisioners, webhooks).
CREATE TABLE consumers (
	name       TEXT PRIMARY KEY,
	last_seq   BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
