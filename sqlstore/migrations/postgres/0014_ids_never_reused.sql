-- Ids are never handed out twice: PostgreSQL's identity columns never
-- reuse a value already. Kept so that both dialects share version numbers.
SELECT 1;
