-- The items of space $1 due at $2 (ms since the epoch) that no live claim
-- holds, in (due_at, id) order, at most $3. Two index ranges: the first $3
-- waiting items, and the claims whose lease has passed (which `claim`
-- takes back, so there are few).
SELECT id, due_at, payload FROM (
    (SELECT id, due_at, payload FROM {{schedules}}
     WHERE space = $1 AND owner IS NULL AND due_at <= $2
     ORDER BY due_at, id LIMIT $3)
    UNION ALL
    (SELECT id, due_at, payload FROM {{schedules}}
     WHERE space = $1 AND owner IS NOT NULL AND claimed_until <= clock_timestamp() AND due_at <= $2)
) AS due
ORDER BY due_at, id
LIMIT $3
