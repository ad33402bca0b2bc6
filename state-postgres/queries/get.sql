-- get(space = $1, id = $2): the live entry, if any.
--
-- A row past its deadline is simply not selected: expiry is decided here,
-- on the server's clock, in the same statement that reads.
-- `ttl_ms` is the time left, rounded up to whole milliseconds (so a live
-- entry reports at least 1 ms); NULL without a TTL.
SELECT value,
       version,
       ceil(extract(epoch FROM expires_at - now()) * 1000)::bigint AS ttl_ms
FROM {{entries}}
WHERE space = $1 AND id = $2 AND (expires_at IS NULL OR expires_at > now())
