-- put(space = $1, id = $2, value = $3, ttl_ms = $4, IfVersion($5))
-- Fenced form: lock name $6, token $7 (see fence.sql).
--
-- Returns (true, new version) when written; (false, version, value,
-- ttl_ms) of the current live entry when rejected; NO row when the key is
-- absent (rejected with nothing to report). The last column, `held`, is
-- true. In the fenced form, when the fence does not hold, one row with
-- `held = false`, and nothing is written.
--
-- Why this is atomic (READ COMMITTED):
--
-- * `locked` takes the row lock first. FOR UPDATE follows the row's update
--   chain from the statement's snapshot to its latest version, waiting for
--   a writer that holds it, so `locked` is the current entry, and no one
--   can change it until we return.
-- * `live` decides expiry then, on `clock_timestamp()`: with the row
--   locked. (An UPDATE's own WHERE is evaluated before it locks, and
--   `now()` is when the statement started; either would let this statement
--   decide "live" on a time before another one saw the entry expire.)
--   Its `now` is the instant the new deadline counts from.
-- * `written` updates that row when it is live at version $5; the
--   rejection reports the very entry the decision was made on.
-- * A row inserted after the statement's snapshot is invisible to
--   `locked`; then the key was absent when the snapshot was taken, which
--   is a valid moment to report it absent.
WITH {{fence:$6,$7}} locked AS MATERIALIZED (
    SELECT value, version, expires_at
    FROM {{entries}}
    WHERE space = $1 AND id = $2 AND {{held}}
    FOR UPDATE
), live AS MATERIALIZED (
    SELECT value, version, expires_at, clock.now
    FROM locked, LATERAL (SELECT clock_timestamp() AS now) AS clock
    WHERE expires_at IS NULL OR expires_at > clock.now
), written AS (
    UPDATE {{entries}} AS e
    SET value = $3,
        version = e.version + 1,
        expires_at = live.now + $4::float8 * interval '1 millisecond'
    FROM live
    WHERE e.space = $1 AND e.id = $2 AND live.version = $5
    RETURNING e.version
)
SELECT true AS written, version, NULL::bytea AS value, NULL::bigint AS ttl_ms, true AS held
FROM written
UNION ALL
SELECT false, version, value, ceil(extract(epoch FROM expires_at - now) * 1000)::bigint, true
FROM live
WHERE version <> $5
UNION ALL
SELECT NULL, NULL, NULL, NULL, false
WHERE NOT {{held}}
