-- Returns an item to waiting if owner $3's claim still holds it. $1 space,
-- $2 id.
UPDATE {{schedules}} SET owner = NULL, claimed_until = NULL
WHERE space = $1 AND id = $2 AND owner = $3 AND claimed_until > clock_timestamp()
RETURNING 1 AS done
