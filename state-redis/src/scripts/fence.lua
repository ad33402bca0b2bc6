-- The fence of a fenced write, prepended to the write's script so that the
-- check and the write are one atomic step: no acquisition, extension or
-- release can come between them.
--
-- KEYS[#KEYS]  the fence lock's lease key: it holds '<token>:<owner id>'
--              exactly while the lock is held (it expires with the lease,
--              by the server's clock, and a release leaves the token alone)
-- ARGV[#ARGV]  the fence's token (decimal)
-- Returns  {-1, 'fenced'} when the lock is not held by that acquisition;
--          otherwise the write below runs (its own keys and arguments come
--          first, so appending the fence's leaves their positions alone).
local fence_token = ARGV[#ARGV] .. ':'
local fence_lease = redis.call('GET', KEYS[#KEYS])
if not fence_lease or string.sub(fence_lease, 1, #fence_token) ~= fence_token then
  return {-1, 'fenced'}
end
