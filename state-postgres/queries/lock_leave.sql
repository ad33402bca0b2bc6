-- leave(name = $1, waiter = $2): takes a waiter that gave up out of the
-- lock's line, so those behind it need not wait out its window.
DELETE FROM {{lock_waiters}} WHERE name = $1 AND waiter = $2
