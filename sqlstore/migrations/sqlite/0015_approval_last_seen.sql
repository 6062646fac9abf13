-- An approval that waits is logged once; each run that plans the same
-- action again only moves its last-seen time.
ALTER TABLE approvals ADD COLUMN last_seen BIGINT NOT NULL DEFAULT 0;
UPDATE approvals SET last_seen = created_at;
-- Before this version an approved action stayed "approved" once sent, and
-- was used again for every later action of the same plan: an approval is
-- used once now, so those already approved count as used (one not sent
-- yet, or whose send failed, is asked for again: the safe side).
UPDATE approvals SET status = 'used' WHERE status = 'approved';
