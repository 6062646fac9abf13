-- An approval that waits is logged once; each run that plans the same
-- action again only moves its last-seen time.
ALTER TABLE approvals ADD COLUMN last_seen BIGINT NOT NULL DEFAULT 0;
UPDATE approvals SET last_seen = created_at;
