-- Administrators' passwords for the admin console (a slow hash), failed
-- attempts that lock an account for a while, and console sessions (their
-- tokens stored as hashes, so a copy of the database signs nobody in).
ALTER TABLE users ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN sign_in_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT NOT NULL DEFAULT 0;
CREATE TABLE admin_sessions (
	id         INTEGER PRIMARY KEY,
	token_hash TEXT    NOT NULL UNIQUE,
	user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	csrf       TEXT    NOT NULL,
	created_at BIGINT  NOT NULL,
	expires_at BIGINT  NOT NULL
);
CREATE INDEX admin_sessions_user ON admin_sessions (user_id);
