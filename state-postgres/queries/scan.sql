-- scan(space = $1, prefix = $2, after = $3, below = $4, limit = $5)
--
-- Keyset pagination on the primary key: the live rows of one space with
-- $2 <= id < $4 (every id starting with the prefix, and nothing else: $4
-- is the prefix's successor computed by the caller), after the cursor $3
-- ('' on the first page: every id is greater), in byte order. Range
-- bounds, not LIKE: no character of the prefix is a wildcard, and the
-- index scan reads only the page (plus expired rows in it), whatever the
-- size of the space. The caller asks for one row more than the page to
-- learn whether there is a next page.
SELECT id, value, version, ceil(extract(epoch FROM expires_at - now()) * 1000)::bigint AS ttl_ms
FROM {{entries}}
WHERE space = $1 AND id >= $2 AND id > $3 AND id < $4
  AND (expires_at IS NULL OR expires_at > now())
ORDER BY id
LIMIT $5
