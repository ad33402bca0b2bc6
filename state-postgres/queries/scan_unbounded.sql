-- scan.sql for a prefix without a successor (the empty prefix, or one made
-- only of U+10FFFF): no upper bound. A separate statement rather than
-- `$4 IS NULL OR id < $4`, which would stop the planner from using $4 as
-- an index bound in a generic plan.
SELECT id, value, version, ceil(extract(epoch FROM expires_at - now()) * 1000)::bigint AS ttl_ms
FROM {{entries}}
WHERE space = $1 AND id >= $2 AND id > $3
  AND (expires_at IS NULL OR expires_at > now())
ORDER BY id
LIMIT $4
