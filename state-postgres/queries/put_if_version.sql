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
-- * `stale` answers without any lock when the statement's snapshot (taken
--   when the statement started, inside the call) already rejects: the
--   entry there is at another version than $5 and still live at
--   `clock_timestamp()`, a moment later, so live at the snapshot too. The
--   snapshot is then the operation's instant, and the rejection reports
--   the entry it saw. Under contention on one key this is most of the
--   calls (their version is already stale), and they no longer queue for
--   the row lock only to be rejected behind it.
-- * Otherwise `locked` takes the row lock. FOR UPDATE follows the row's update
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
WITH {{fence:$6,$7}} stale AS MATERIALIZED (
    SELECT value, version, expires_at, clock.now
    FROM {{entries}}, LATERAL (SELECT clock_timestamp() AS now) AS clock
    WHERE space = $1 AND id = $2 AND {{held}} AND version <> $5
      AND (expires_at IS NULL OR expires_at > clock.now)
), locked AS MATERIALIZED (
    SELECT value, version, expires_at
    FROM {{entries}}
    WHERE space = $1 AND id = $2 AND {{held}} AND NOT EXISTS (SELECT 1 FROM stale)
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
SELECT false, version, value, ceil(extract(epoch FROM expires_at - now) * 1000)::bigint, true
FROM stale
UNION ALL
SELECT NULL, NULL, NULL, NULL, false
WHERE NOT {{held}}
