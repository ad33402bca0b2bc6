-- Removes a schedule item, claimed or not. $1 space, $2 id.
DELETE FROM {{schedules}} WHERE space = $1 AND id = $2 RETURNING 1 AS removed
