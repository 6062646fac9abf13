-- A user's profile: the SCIM resource as its client sent it (RFC 7643 core
-- and enterprise attributes beyond the directory's own fields), as a JSON
-- object; '{}' for users that never came over SCIM.
ALTER TABLE users ADD COLUMN profile TEXT NOT NULL DEFAULT '{}';
