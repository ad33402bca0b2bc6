-- put(space = $1, id = $2, value = $3, ttl_ms = $4 (NULL: no expiry), Always)
--
-- One upsert. On a conflict PostgreSQL locks the existing row and applies
-- the SET to its latest committed version, so concurrent writers to one
-- key serialize on that row lock and every one of them bumps the version
-- it finds. An expired row counts as absent: it is overwritten in place,
-- and its version restarts at 1, in this same statement.
INSERT INTO {{entries}} AS e (space, id, value, version, expires_at)
VALUES ($1, $2, $3, 1, now() + $4::float8 * interval '1 millisecond')
ON CONFLICT (space, id) DO UPDATE
SET value = excluded.value,
    version = CASE WHEN e.expires_at IS NOT NULL AND e.expires_at <= now() THEN 1 ELSE e.version + 1 END,
    expires_at = excluded.expires_at
RETURNING version
