-- The conditional put: check, write, TTL and index in one atomic step.
--
-- Redis runs a script alone, so no other client can act between reading
-- the current version and writing the new one: two concurrent IfAbsent puts
-- cannot both see the key absent. The check includes expiry for free, and
-- atomically: Redis treats a key past its deadline as absent on access, and
-- a script sees one frozen clock, so a key cannot expire (or come back)
-- between the check and the write.
--
-- KEYS[1]  the entry (see entry.lua)
-- KEYS[2]  the space's index: a sorted set of ids, every score 0
-- KEYS[3]  the space's expiry schedule (see index.lua)
-- ARGV[1]  the condition: 'always' | 'absent' | 'version'
-- ARGV[2]  the expected version (decimal) for 'version', else ''
-- ARGV[3]  the value, as bytes (never spliced into this text)
-- ARGV[4]  the TTL in milliseconds, or '' for none
-- ARGV[5]  the id, the index member
-- ARGV[6]  '1' when the space is scanned (indexed), '' when it is
--          declared never scanned: then the entry alone is written
-- Returns  {1, version} when written; {0} when rejected on an absent key;
--          {0, value, version, pttl} when rejected on a live one.
local entry, index, schedule = KEYS[1], KEYS[2], KEYS[3]
local condition, expected, value, ttl, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local indexed = ARGV[6] == '1'

-- The entry that made the condition fail, read in the same step.
local function rejected()
  local current_value, current = entry_read(entry)
  if not current_value then
    return {0}
  end
  return {0, current_value, current, redis.call('PTTL', entry)}
end

local current, version = false, 1
if condition == 'absent' then
  -- A creation is one SET NX, which also sets the TTL. (In a space never
  -- scanned, the store sends that SET NX alone, without this script, and
  -- comes here only when a rejected creation found the entry gone.)
  if not entry_create(entry, value, ttl) then
    return rejected()
  end
else
  current = entry_version(entry)
  if condition == 'version' and current ~= expected then
    return rejected()
  end
  if current then
    version = next_version(current)
  end
  -- SET sets the TTL or, without one, clears any earlier one.
  entry_write(entry, version, value, ttl)
end

if indexed then
  if ttl ~= '' then
    schedule_expiry(schedule, id, ttl)
  elseif current then
    -- A rewrite without TTL drops the id's schedule member, if any. (A
    -- creation without TTL leaves a member an expired entry of the same
    -- id may have left until it is due; the sweep then finds this entry
    -- without a TTL and drops only that member.)
    redis.call('ZREM', schedule, id)
  end
  -- Every live entry is in the index (expired ones leave it by the sweep
  -- or a scan), so only a creation has to add the id.
  if not current then
    redis.call('ZADD', index, 0, id)
    -- The entry key is the space's entry prefix followed by the id.
    sweep_expired(index, schedule, string.sub(entry, 1, #entry - #id), SWEEP_BUDGET)
  end
end
return {1, version}
