-- Removes an item, claimed or not.
--
-- ARGV[1]  the id
-- Returns  1 if it was there, 0 if not.
local id = ARGV[1]
local existed = redis.call('HDEL', KEYS[3], id)
redis.call('ZREM', KEYS[1], id)
redis.call('ZREM', KEYS[2], id)
redis.call('HDEL', KEYS[4], id)
redis.call('HDEL', KEYS[5], id)
return existed
