-- Claims up to $3 items of space $1 due at $2 for owner $4, for $5 ms on
-- the server's clock, in one statement. The candidates are the first due
-- items (more than $3: racing claimers skip each other's), each locked
-- FOR UPDATE SKIP LOCKED and checked again once locked (a concurrent
-- claimer that got there first changed it), so racing claimers take
-- different items, in due order among those left, and none takes an item
-- twice.
WITH candidates AS (
    (SELECT id FROM {{schedules}}
     WHERE space = $1 AND owner IS NULL AND due_at <= $2
     ORDER BY due_at, id LIMIT $3 * 4 + 32)
    UNION ALL
    (SELECT id FROM {{schedules}}
     WHERE space = $1 AND owner IS NOT NULL AND claimed_until <= clock_timestamp() AND due_at <= $2)
), taken AS (
    SELECT s.space, s.id FROM {{schedules}} s
    WHERE s.space = $1 AND s.id IN (SELECT id FROM candidates)
      AND s.due_at <= $2 AND (s.owner IS NULL OR s.claimed_until <= clock_timestamp())
    ORDER BY s.due_at, s.id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE {{schedules}} s
SET owner = $4, claimed_until = clock_timestamp() + $5 * interval '1 millisecond'
FROM taken
WHERE s.space = taken.space AND s.id = taken.id
RETURNING s.id, s.due_at, s.payload
