-- put(space = $1, id = $2, value = $3, ttl_ms = $4 (NULL: no expiry), Always)
-- Fenced form: lock name $5, token $6 (see fence.sql).
--
-- Returns (version, held = true) once written; in the fenced form, when
-- the fence does not hold, (NULL, held = false) and nothing is written.
--
-- One upsert. On a conflict PostgreSQL locks the existing row and applies
-- the SET to its latest committed version, so concurrent writers to one
-- key serialize on that row lock and every one of them bumps the version
-- it finds. An expired row counts as absent: it is overwritten in place,
-- and its version restarts at 1, in this same statement.
--
-- Expiry is decided on `clock_timestamp()`, read once in the SET, i.e.
-- with the row locked - not on `now()`, the time the statement started:
-- a statement that waited for the lock would otherwise decide on a time
-- before writes it then overwrites, and see live an entry that others
-- have already seen expire. The new deadline counts from the same instant.
WITH {{fence:$5,$6}} written AS (
    INSERT INTO {{entries}} AS e (space, id, value, version, expires_at)
    SELECT $1::text, $2::text, $3::bytea, 1, clock_timestamp() + $4::float8 * interval '1 millisecond'
    WHERE {{held}}
    ON CONFLICT (space, id) DO UPDATE
    SET (value, version, expires_at) = (
        SELECT excluded.value,
               CASE WHEN e.expires_at IS NOT NULL AND e.expires_at <= clock.now THEN 1 ELSE e.version + 1 END,
               clock.now + $4::float8 * interval '1 millisecond'
        FROM (SELECT clock_timestamp() AS now) AS clock
    )
    RETURNING version
)
SELECT version, true AS held
FROM written
UNION ALL
SELECT NULL, false
WHERE NOT {{held}}
