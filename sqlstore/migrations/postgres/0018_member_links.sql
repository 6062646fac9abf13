-- What a group provisioner learnt of each member it wrote: the principal
-- name it looked the user up by, and the Entra object it found. A change
-- of membership then costs no lookup; a changed principal name, a write
-- that fails for the object, or a reconcile asks again.
CREATE TABLE member_links (
	provisioner TEXT   NOT NULL REFERENCES provisioners (name) ON DELETE CASCADE,
	user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	principal   TEXT   NOT NULL,
	remote_id   TEXT   NOT NULL,
	resolved_at BIGINT NOT NULL,
	PRIMARY KEY (provisioner, user_id)
);
CREATE INDEX member_links_remote ON member_links (provisioner, remote_id);
