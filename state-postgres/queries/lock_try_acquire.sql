-- try_acquire(name = $1, owner = $2, ttl_ms = $3, waiter = $4, ticket = $5,
--             window_ms = $6, next_ticket = $7); `waiter` (a client's entry
-- in the line) is '' for try_acquire, which comes after every waiter.
--
-- Returns (fencing, NULL) when acquired; (NULL, holder_ttl_ms) when held by
-- another lease, with the holder's remaining time as a hint for waiters
-- (NULL when the lock is free but a waiter before this one is live); no
-- row when held but the holder's row is not in this statement's snapshot
-- (no hint).
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
-- The line: the upsert is not even tried while a live waiter with a
-- smaller (ticket, waiter) stands in {{lock_waiters}}. That check reads
-- the statement's snapshot: a waiter joining at this very instant may be
-- missed, which only lets calls made together swap places; mutual
-- exclusion is the upsert's alone. A refused waiter stands in line (its
-- row inserted, or its ticket and live_until set); a granted one leaves
-- it, or keeps it with `next_ticket` where another call of its client
-- waits. The grant also deletes the rows of waiters long silent, skipping
-- any row someone holds (SKIP LOCKED), so it never waits on another
-- waiter. Each statement writes only its own waiter's row otherwise.
--
-- Time is `clock_timestamp()`, as in the entry statements (put_always.sql):
-- the DO UPDATE's WHERE runs with the row locked, so "expired" is decided
-- at that instant, not when the statement started (`now()`), which may be
-- before a wait for the row; and a taken-over lease's deadline counts from
-- the takeover.
WITH ahead AS (
    SELECT 1
    FROM {{lock_waiters}}
    WHERE name = $1 AND live_until > clock_timestamp() AND waiter <> $4 AND ($4 = '' OR (ticket, waiter) < ($5, $4))
    LIMIT 1
),
acquired AS (
    INSERT INTO {{locks}} AS l (name, owner, fencing, expires_at)
    SELECT $1, $2, 1, clock_timestamp() + $3::float8 * interval '1 millisecond'
    WHERE NOT EXISTS (SELECT 1 FROM ahead)
    ON CONFLICT (name) DO UPDATE
    SET owner = excluded.owner, fencing = l.fencing + 1, expires_at = clock_timestamp() + $3::float8 * interval '1 millisecond'
    WHERE l.owner IS NULL OR l.expires_at <= clock_timestamp()
    RETURNING l.fencing
),
left_line AS (
    DELETE FROM {{lock_waiters}}
    WHERE ctid = ANY (ARRAY(
        SELECT ctid
        FROM {{lock_waiters}}
        WHERE name = $1
          AND ((waiter = $4 AND $7::bigint IS NULL)
               OR (waiter <> $4 AND live_until <= clock_timestamp() - interval '1 minute'))
        FOR UPDATE SKIP LOCKED
    ))
    AND EXISTS (SELECT 1 FROM acquired)
),
stood AS (
    INSERT INTO {{lock_waiters}} (name, waiter, ticket, live_until)
    SELECT $1, $4, CASE WHEN EXISTS (SELECT 1 FROM acquired) THEN $7::bigint ELSE $5 END,
           clock_timestamp() + $6::float8 * interval '1 millisecond'
    WHERE $4 <> '' AND (NOT EXISTS (SELECT 1 FROM acquired) OR $7::bigint IS NOT NULL)
    ON CONFLICT (name, waiter) DO UPDATE SET ticket = excluded.ticket, live_until = excluded.live_until
)
SELECT fencing, NULL::bigint AS holder_ttl_ms
FROM acquired
UNION ALL
SELECT NULL, ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint
FROM {{locks}}
WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM acquired)
