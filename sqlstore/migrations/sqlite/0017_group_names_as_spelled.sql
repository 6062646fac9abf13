-- A group a source named (a pull, a SCIM client) keeps its name as the
-- source spells it: a ':' in it is part of the name, not a folder path, so
-- such a group sits in no folder and makes none. Groups made before keep
-- the folders they are in.
ALTER TABLE groups ADD COLUMN flat BOOLEAN NOT NULL DEFAULT FALSE;
