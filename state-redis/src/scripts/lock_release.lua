-- Releases a lease if, and only if, this owner still holds it, and wakes
-- waiters.
--
-- The owner check and the release are one step, so a stale holder can
-- never release the lease of whoever took the lock over. The lease key
-- keeps the token alone for the token memory (see lock_acquire.lua), then
-- goes. The notification is published by the same script, so it is sent
-- exactly when the lock became free.
--
-- KEYS[1]  the lease
-- ARGV[1]  the lease's value: '<token>:<owner id>'
-- ARGV[2]  the channel waiters listen on
-- ARGV[3]  PUBLISH, or SPUBLISH in a cluster (the channel carries the
--          lease's hash tag, so it belongs to this script's slot)
-- ARGV[4]  the token memory in milliseconds
-- ARGV[5]  the token (decimal)
-- Returns  1 when released, 0 when the lease is no longer held.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[5], 'PX', ARGV[4])
redis.call(ARGV[3], ARGV[2], 'released')
return 1
