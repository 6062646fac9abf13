-- Schedules of pull command lines, run by usersync serve as jobs (River's
-- tables are made by its own migrations, run right after these), and the
-- record of every run.
CREATE TABLE schedules (
	name       TEXT PRIMARY KEY,
	cron       TEXT    NOT NULL,
	time_zone  TEXT    NOT NULL DEFAULT '',
	command    TEXT    NOT NULL,
	paused     BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT  NOT NULL,
	updated_at BIGINT  NOT NULL,
	version    BIGINT  NOT NULL
);
CREATE TABLE runs (
	id         INTEGER PRIMARY KEY,
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
CREATE INDEX runs_schedule ON runs (schedule, id);
