-- Reads one entry: value, version and remaining TTL in one atomic step.
--
-- Three separate commands could straddle the entry's deadline (value read,
-- then the key expires, then PTTL says -2) or another client's write; inside
-- one script Redis runs nothing else and its clock is frozen, so the three
-- reads describe one instant. An expired key is simply absent here: Redis
-- checks a key's deadline on every access.
--
-- KEYS[1]  the entry (see entry.lua)
-- Returns  nil when absent, else {value, version, pttl}; pttl is -1 when the
--          entry never expires.
local entry = KEYS[1]
local value, version = entry_read(entry)
if not value then
  return false
end
return {value, version, redis.call('PTTL', entry)}
