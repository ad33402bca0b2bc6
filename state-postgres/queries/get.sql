-- get(space = $1, id = $2): the entry, and whether it has expired.
--
-- Expiry is decided here, on the server's clock, in the statement that
-- reads; `clock_timestamp()` is read while the row is read, after the
-- statement's snapshot was taken, so no write this read sees started
-- after the instant it judges expiry by (`now()`, when the statement
-- started, could be).
--
-- A row that looks expired is read again with `get_locked.sql` before it
-- is reported absent: a writer may hold it, having judged it live before
-- it expired, and must not be reordered after a read that saw it expire.
-- `ttl_ms` is the time left, rounded up to whole milliseconds (so a live
-- entry reports at least 1 ms); NULL without a TTL.
SELECT value,
       version,
       ceil(extract(epoch FROM expires_at - clock.now) * 1000)::bigint AS ttl_ms,
       expires_at IS NOT NULL AND expires_at <= clock.now AS expired
FROM {{entries}}, LATERAL (SELECT clock_timestamp() AS now) AS clock
WHERE space = $1 AND id = $2
