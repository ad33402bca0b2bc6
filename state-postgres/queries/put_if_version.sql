-- put(space = $1, id = $2, value = $3, ttl_ms = $4, IfVersion($5))
--
-- Returns (true, new version) when written; (false, version, value,
-- ttl_ms) of the current live entry when rejected; NO row when the key is
-- absent (rejected with nothing to report) or when the rejecting entry
-- could not be read here (see below).
--
-- Why this is atomic (READ COMMITTED):
--
-- * `written` is an UPDATE of the live row at exactly version $5. If a
--   concurrent writer changed the row after our snapshot, the UPDATE waits
--   for it and re-evaluates its WHERE on the latest version (EvalPlanQual),
--   so two CAS calls on one version can never both succeed.
-- * When it does not match, no lock is held, so `found` reads the row's
--   latest version with FOR UPDATE (following the update chain from the
--   snapshot's version). That read is the linearization point of the
--   rejection: the caller checks that the entry it returns really rejects
--   version $5 (a writer could have set the row to $5 in between) and
--   otherwise runs the statement again. A row inserted after the
--   statement's snapshot is invisible to `found`; then the key was absent
--   when the snapshot was taken, which is a valid moment to report it
--   absent.
WITH written AS (
    UPDATE {{entries}} AS e
    SET value = $3,
        version = e.version + 1,
        expires_at = now() + $4::float8 * interval '1 millisecond'
    WHERE e.space = $1 AND e.id = $2 AND e.version = $5
      AND (e.expires_at IS NULL OR e.expires_at > now())
    RETURNING e.version
), found AS (
    SELECT value, version, expires_at
    FROM {{entries}}
    WHERE space = $1 AND id = $2 AND NOT EXISTS (SELECT 1 FROM written)
    FOR UPDATE
)
SELECT true AS written, version, NULL::bytea AS value, NULL::bigint AS ttl_ms
FROM written
UNION ALL
SELECT false, version, value, ceil(extract(epoch FROM expires_at - now()) * 1000)::bigint
FROM found
WHERE expires_at IS NULL OR expires_at > now()
