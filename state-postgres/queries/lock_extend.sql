-- extend(name = $1, owner = $2, fencing = $3, ttl_ms = $4): a row when
-- extended. Only the live lease of this very acquisition (owner and token)
-- matches; an expired, released or taken-over lease matches nothing, so
-- the current holder is never touched. Liveness is decided on
-- `clock_timestamp()`, not the statement's start (`now()`): an extension
-- that waited for the row (a fenced write holds it FOR SHARE) must not
-- revive a lease that expired meanwhile, and an UPDATE re-checks its WHERE
-- on a row changed meanwhile with the clock read again.
UPDATE {{locks}}
SET expires_at = clock_timestamp() + $4::float8 * interval '1 millisecond'
WHERE name = $1 AND owner = $2 AND fencing = $3 AND expires_at > clock_timestamp()
RETURNING fencing
