-- fence(name = $NAME, fencing = $TOKEN): the check of a fenced write, a
-- materialized CTE `fence` that the write statements begin with in their
-- fenced form (see `{{fence:...}}` and `{{held}}` in statements.rs). One
-- row when the lease that was issued token $TOKEN holds the lock now, and
-- that row is then locked FOR SHARE until the statement's transaction
-- ends: an acquisition, extension or release of the lock updates the row,
-- so it waits until the write has committed, and the write is ordered
-- before it. No row otherwise: every part of the write is gated on
-- `{{held}}`, so nothing is written, and the statement answers with its
-- `held = false` row.
--
-- The write's statement evaluates this CTE before it touches the entry:
-- `{{held}}` is an uncorrelated EXISTS, which PostgreSQL runs once, first.
-- Lock order is therefore always the lock's row, then the entry's row;
-- no other statement locks both, so fenced writes cannot deadlock.
--
-- Liveness is decided on `clock_timestamp()`, the time of the check, not
-- the statement's start (see put_always.sql); FOR SHARE follows the row to
-- its latest version and re-checks this WHERE there.
SELECT 1 AS held
FROM {{locks}}
WHERE name = $NAME AND fencing = $TOKEN AND expires_at > clock_timestamp()
FOR SHARE
