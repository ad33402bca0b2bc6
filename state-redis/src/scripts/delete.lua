-- Deletes an entry, optionally only at one version, in one atomic step.
--
-- KEYS[1]  the entry (see entry.lua)
-- KEYS[2]  the space's index
-- KEYS[3]  the space's expiry schedule (see index.lua)
-- ARGV[1]  the expected version (decimal), or '' to delete whatever is live
-- ARGV[2]  the id, the index member
-- ARGV[3]  '1' when the space is scanned (indexed), '' when it is
--          declared never scanned (nothing indexes its entries)
-- Returns  1 when a live entry was removed, else 0.
local entry, index, schedule = KEYS[1], KEYS[2], KEYS[3]
local expected, id = ARGV[1], ARGV[2]

-- Expired counts as absent: Redis checks the deadline on this access.
local current = entry_version(entry)
if current and expected ~= '' and current ~= expected then
  return 0
end
-- Also drops the stale member an expired entry may have left behind.
if ARGV[3] == '1' then
  redis.call('ZREM', index, id)
  redis.call('ZREM', schedule, id)
end
if not current then
  return 0
end
redis.call('DEL', entry)
return 1
