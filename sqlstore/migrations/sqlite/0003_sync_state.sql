-- What a pull source keeps between runs for one group: delta links and
-- when the group was last read in full.
CREATE TABLE sync_state (
	source     TEXT NOT NULL,
	key        TEXT NOT NULL,
	value      TEXT NOT NULL,
	full_at    BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (source, key)
);
