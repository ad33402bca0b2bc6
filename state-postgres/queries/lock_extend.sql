-- extend(name = $1, owner = $2, fencing = $3, ttl_ms = $4): a row when
-- extended. Only the live lease of this very acquisition (owner and token)
-- matches; an expired, released or taken-over lease matches nothing, so
-- the current holder is never touched.
UPDATE {{locks}}
SET expires_at = now() + $4::float8 * interval '1 millisecond'
WHERE name = $1 AND owner = $2 AND fencing = $3 AND expires_at > now()
RETURNING fencing
