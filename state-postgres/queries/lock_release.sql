-- release(name = $1, owner = $2, fencing = $3, channel = $4): a row when
-- released. Same match as extend; the fencing counter stays in the row.
-- pg_notify is transactional: waiters LISTENing on the channel hear of
-- the release when it commits, i.e. once the lock is really free.
WITH released AS (
    UPDATE {{locks}}
    SET owner = NULL, expires_at = NULL
    WHERE name = $1 AND owner = $2 AND fencing = $3 AND expires_at > clock_timestamp()
    RETURNING name
)
SELECT pg_notify($4, name)::text AS notified
FROM released
