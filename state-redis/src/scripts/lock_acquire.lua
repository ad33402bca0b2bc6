-- Takes a free lock and issues the next fencing token, in one atomic step.
--
-- Two keys per lock name, in one cluster slot (same hash tag):
--   the lease key holds the owner id and expires with the lease (PX), so
--   "free" is decided by the server's clock with no read-then-delete;
--   the token key is a counter that never expires and is never deleted, so
--   tokens keep increasing across releases, expiries and takeovers.
--
-- KEYS[1]  the token counter
-- KEYS[2]  the lease
-- ARGV[1]  the new owner id
-- ARGV[2]  the lease TTL in milliseconds
-- Returns  {1, token} when acquired; {0, ms left on the current lease}
--          otherwise (-1 if that lease has no deadline).
local remaining = redis.call('PTTL', KEYS[2])
if remaining ~= -2 then
  return {0, remaining}
end
local token = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {1, token}
