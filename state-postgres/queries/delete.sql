-- delete(space = $1, id = $2, IfVersion($3), or Always when $3 IS NULL)
-- Fenced form: lock name $4, token $5 (see fence.sql).
--
-- Returns one row when a row was removed, saying whether it was live: an
-- expired row is removed too (it was absent anyway) but reported as
-- `false`, as the contract requires. A concurrent write to the row makes
-- the DELETE wait and re-check its WHERE on the latest version. Liveness
-- is decided on `clock_timestamp()` in RETURNING, i.e. on the row we hold
-- (see put_always.sql for why not `now()`). The last column, `held`, is
-- true. In the fenced form, when the fence does not hold, one row with
-- `held = false`, and nothing is deleted.
WITH {{fence:$4,$5}} deleted AS (
    DELETE FROM {{entries}}
    WHERE space = $1 AND id = $2 AND ($3::bigint IS NULL OR version = $3::bigint) AND {{held}}
    RETURNING (expires_at IS NULL OR expires_at > clock_timestamp()) AS was_live
)
SELECT was_live, true AS held
FROM deleted
UNION ALL
SELECT NULL, false
WHERE NOT {{held}}
