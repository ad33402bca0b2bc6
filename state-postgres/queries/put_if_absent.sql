-- put(space = $1, id = $2, value = $3, ttl_ms = $4, IfAbsent)
-- Fenced form: lock name $5, token $6 (see fence.sql).
--
-- Returns one row: (true, new version) when written, or (false, version,
-- value, ttl_ms) of the live entry that made the condition fail; the last
-- column, `held`, is true. In the fenced form, when the fence does not
-- hold, one row with `held = false`, and nothing is written.
-- It returns NO row when the rejecting entry could not be read in this
-- statement; nothing was written then, and the caller runs it again.
--
-- Why this is atomic (READ COMMITTED, which the store pins):
--
-- * `written` inserts the row, or, when the key exists, takes the row lock
--   on its latest committed version and evaluates the WHERE on that
--   version: only an expired row is overwritten (version 1). Concurrent
--   callers on one key serialize on the unique index and the row lock, so
--   of any number of them on an absent key exactly one inserts.
-- * Expiry is decided on `clock_timestamp()` in that WHERE, i.e. with the
--   row locked, not on `now()` (when the statement started): a statement
--   that waited for the lock must not decide on a time before the writes
--   it waited for (see put_always.sql).
-- * When the WHERE fails the row is *still locked* by this statement
--   (ON CONFLICT DO UPDATE locks every conflicting row it examines), so no
--   one can change it until we return.
-- * `found` then reads that row with FOR UPDATE. Its scan starts from the
--   statement's snapshot, and FOR UPDATE follows the row's update chain to
--   the latest version - the one we hold locked, i.e. exactly the version
--   the condition was checked against. The `NOT EXISTS (written)` guard
--   runs `written` first and skips the read when we wrote. If the entry
--   expired between the WHERE and this read, nothing is returned and the
--   caller runs the statement again.
-- * The one thing `found` cannot see is a row *inserted* after the
--   statement's snapshot was taken (or a row deleted and re-inserted):
--   snapshot scans never return it. Then the statement returns no row, and
--   the caller retries with a fresh snapshot. A retried attempt changed
--   nothing, so the operation as a whole takes effect once.
WITH {{fence:$5,$6}} written AS (
    INSERT INTO {{entries}} AS e (space, id, value, version, expires_at)
    SELECT $1::text, $2::text, $3::bytea, 1, clock_timestamp() + $4::float8 * interval '1 millisecond'
    WHERE {{held}}
    ON CONFLICT (space, id) DO UPDATE
    SET value = excluded.value, version = 1, expires_at = clock_timestamp() + $4::float8 * interval '1 millisecond'
    WHERE e.expires_at IS NOT NULL AND e.expires_at <= clock_timestamp()
    RETURNING e.version
), found AS (
    SELECT value, version, expires_at
    FROM {{entries}}
    WHERE space = $1 AND id = $2 AND {{held}} AND NOT EXISTS (SELECT 1 FROM written)
    FOR UPDATE
)
SELECT true AS written, version, NULL::bytea AS value, NULL::bigint AS ttl_ms, true AS held
FROM written
UNION ALL
SELECT false, version, value, ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint, true
FROM found
WHERE expires_at IS NULL OR expires_at > clock_timestamp()
UNION ALL
SELECT NULL, NULL, NULL, NULL, false
WHERE NOT {{held}}
