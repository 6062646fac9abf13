-- Leases: which process runs a job now (a provisioner, in usersync serve),
-- so that replicas sharing a directory do not run it twice at once.
CREATE TABLE leases (
	name       TEXT PRIMARY KEY,
	holder     TEXT   NOT NULL,
	expires_at BIGINT NOT NULL
);
