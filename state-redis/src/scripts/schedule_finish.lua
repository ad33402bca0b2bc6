-- Completes (ARGV[3] = 'complete': removes the item) or releases
-- (ARGV[3] = 'release': back to waiting) a claimed item, if the claim still
-- holds it.
--
-- ARGV[1]  the id
-- ARGV[2]  the claim's owner id
-- ARGV[3]  'complete' or 'release'
-- Returns  1 when done, 0 when the claim no longer holds the item.
local id, owner = ARGV[1], ARGV[2]
if not held(id, owner, server_millis()) then
  return 0
end
redis.call('ZREM', KEYS[2], id)
redis.call('HDEL', KEYS[5], id)
if ARGV[3] == 'complete' then
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
else
  redis.call('ZADD', KEYS[1], redis.call('HGET', KEYS[3], id), id)
end
return 1
