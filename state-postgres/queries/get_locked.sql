-- get(space = $1, id = $2), for a row `get.sql` found expired.
--
-- FOR SHARE waits for a writer that holds the row and reads the version it
-- committed (or nothing, when it was deleted), so this read is ordered
-- after every write that judged the entry live; expiry is then decided on
-- `clock_timestamp()` of that version.
SELECT value,
       version,
       ceil(extract(epoch FROM expires_at - clock.now) * 1000)::bigint AS ttl_ms,
       expires_at IS NOT NULL AND expires_at <= clock.now AS expired
FROM {{entries}} AS e, LATERAL (SELECT clock_timestamp() AS now) AS clock
WHERE e.space = $1 AND e.id = $2
FOR SHARE OF e
