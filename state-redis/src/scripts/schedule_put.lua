-- Puts or moves an item (replace by id); a claim of it ends.
--
-- ARGV[1]  the id
-- ARGV[2]  the due time, ms since the epoch (decimal)
-- ARGV[3]  the payload, as bytes
-- Returns  1.
local id = ARGV[1]
redis.call('ZREM', KEYS[2], id)
redis.call('HDEL', KEYS[5], id)
redis.call('ZADD', KEYS[1], ARGV[2], id)
redis.call('HSET', KEYS[3], id, ARGV[2])
redis.call('HSET', KEYS[4], id, ARGV[3])
return 1
