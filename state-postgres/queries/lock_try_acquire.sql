-- try_acquire(name = $1, owner = $2, ttl_ms = $3)
--
-- Returns (fencing, NULL) when acquired; (NULL, holder_ttl_ms) when held by
-- another lease, with the holder's remaining time as a hint for waiters;
-- no row when held but the holder's row is not in this statement's
-- snapshot (no hint).
--
-- The upsert is the whole decision: it inserts the first acquisition, or
-- locks the lock's row and takes it over only when it is free (released:
-- owner NULL; abandoned: expires_at passed). Concurrent acquirers
-- serialize on that row lock and each re-evaluates the WHERE on the
-- latest version, so at most one of them wins. The fencing counter lives
-- in the same row, is bumped by every acquisition and never reset, so
-- tokens strictly increase across releases, expiries and takeovers.
-- The hint is a plain snapshot read: it only tunes how long a waiter
-- sleeps, never whether it holds the lock.
--
-- Time is `clock_timestamp()`, as in the entry statements (put_always.sql):
-- the DO UPDATE's WHERE runs with the row locked, so "expired" is decided
-- at that instant, not when the statement started (`now()`), which may be
-- before a wait for the row; and a taken-over lease's deadline counts from
-- the takeover.
WITH acquired AS (
    INSERT INTO {{locks}} AS l (name, owner, fencing, expires_at)
    VALUES ($1, $2, 1, clock_timestamp() + $3::float8 * interval '1 millisecond')
    ON CONFLICT (name) DO UPDATE
    SET owner = excluded.owner, fencing = l.fencing + 1, expires_at = clock_timestamp() + $3::float8 * interval '1 millisecond'
    WHERE l.owner IS NULL OR l.expires_at <= clock_timestamp()
    RETURNING l.fencing
)
SELECT fencing, NULL::bigint AS holder_ttl_ms
FROM acquired
UNION ALL
SELECT NULL, ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint
FROM {{locks}}
WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM acquired)
