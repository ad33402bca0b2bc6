-- Extends a lease if, and only if, this owner still holds it.
--
-- Checking the owner and moving the deadline in one script means a lease
-- that expired (the key is gone), was released (the key holds the token
-- alone) or was taken over (another token and owner) is never touched.
--
-- KEYS[1]  the lease
-- ARGV[1]  the lease's value: '<token>:<owner id>'
-- ARGV[2]  the new TTL in milliseconds, from now
-- Returns  1 when extended, 0 when the lease is no longer held.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
