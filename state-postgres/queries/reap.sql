-- reap(batch = $1): deletes up to $1 expired rows; returns how many.
--
-- The inner SELECT picks one batch of expired rows through the partial
-- index on expires_at and locks them; SKIP LOCKED passes over rows that
-- writers hold, so the reaper never waits on, or blocks, live traffic.
-- The DELETE then reaches exactly those row versions by ctid (a TID scan:
-- the cost is the batch, not the number of expired rows), which is sound
-- because we hold their locks and no one can move them. The outer
-- `expires_at <= now()` re-checks the deadline on the very version being
-- deleted: a row rewritten after it expired - with a new deadline or
-- none - is never deleted.
WITH reaped AS (
    DELETE FROM {{entries}}
    WHERE ctid = ANY (ARRAY(
        SELECT ctid
        FROM {{entries}}
        WHERE expires_at <= now()
        LIMIT $1
        FOR UPDATE SKIP LOCKED
    ))
    AND expires_at <= now()
    RETURNING 1
)
SELECT count(*) AS reaped FROM reaped
