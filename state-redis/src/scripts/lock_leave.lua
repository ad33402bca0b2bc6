-- Takes a waiter out of a lock's line (an acquire that timed out or
-- failed), so that those behind it need not wait out its window.
--
-- KEYS[1]  the line
-- KEYS[2]  the live set
-- ARGV[1]  the waiter's id
-- Returns  the number of keys it was removed from.
return redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
