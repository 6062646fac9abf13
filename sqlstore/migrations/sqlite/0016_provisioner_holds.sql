-- What a guard of a provisioner holds back (a mass deprovision), kept
-- until a run no longer holds it, so that status, the API and the console
-- show it and an administrator can allow or reject it.
CREATE TABLE provisioner_holds (
	provisioner TEXT   NOT NULL REFERENCES provisioners (name) ON DELETE CASCADE,
	what        TEXT   NOT NULL,
	count       INTEGER NOT NULL,
	reason      TEXT   NOT NULL,
	users       TEXT   NOT NULL,
	since       BIGINT NOT NULL,
	PRIMARY KEY (provisioner, what)
);
