-- fence(name = $1, fencing = $2): the check of a fenced write, run first in
-- the write's transaction. One row when the lease that was issued token $2
-- holds the lock now, and that row is then locked FOR SHARE until the
-- transaction ends: an acquisition, extension or release of the lock
-- updates the row, so it waits until the write has committed, and the
-- write is ordered before it. No row otherwise, and the write is not run.
--
-- Liveness is decided on `clock_timestamp()`, the time of the check, not
-- the statement's start (see put_always.sql).
SELECT 1 AS held
FROM {{locks}}
WHERE name = $1 AND fencing = $2 AND expires_at > clock_timestamp()
FOR SHARE
