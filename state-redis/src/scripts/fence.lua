-- The fence of a fenced write, prepended to the write's script so that the
-- check and the write are one atomic step: no acquisition, extension or
-- release can come between them.
--
-- KEYS[#KEYS - 1]  the fence lock's lease key: it exists exactly while the
--                  lock is held (it expires with the lease, by the server's
--                  clock, and a release deletes it)
-- KEYS[#KEYS]      the lock's token counter: the token of its latest
--                  acquisition, which is the holder's while the lease exists
-- ARGV[#ARGV]      the fence's token (decimal)
-- Returns  {-1, 'fenced'} when the lock is not held by that acquisition;
--          otherwise the write below runs (its own keys and arguments come
--          first, so appending the fence's leaves their positions alone).
if redis.call('EXISTS', KEYS[#KEYS - 1]) == 0 or redis.call('GET', KEYS[#KEYS]) ~= ARGV[#ARGV] then
  return {-1, 'fenced'}
end
