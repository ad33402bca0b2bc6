-- The conditional put: check, write, TTL and index in one atomic step.
--
-- Redis runs a script alone, so no other client can act between reading
-- the current version and writing the new one: two concurrent IfAbsent puts
-- cannot both see the key absent. The check includes expiry for free, and
-- atomically: Redis treats a key past its deadline as absent on access, and
-- a script sees one frozen clock, so a key cannot expire (or come back)
-- between the check and the write.
--
-- KEYS[1]  the entry hash {v = value, ver = version}
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

local current = redis.call('HGET', entry, 'ver')
local holds = condition == 'always'
  or (condition == 'absent' and not current)
  or (condition == 'version' and current == expected)
if not holds then
  if not current then
    return {0}
  end
  -- The entry that made the condition fail, read in the same step.
  return {0, redis.call('HGET', entry, 'v'), current, redis.call('PTTL', entry)}
end

local version = 1
if current then
  redis.call('HSET', entry, 'v', value)
  -- The server does the arithmetic in 64-bit integers.
  version = redis.call('HINCRBY', entry, 'ver', 1)
  -- A write without TTL clears any earlier one, and the id's schedule
  -- member with it.
  if ttl == '' and redis.call('PERSIST', entry) == 1 and indexed then
    redis.call('ZREM', schedule, id)
  end
else
  -- A fresh hash has no TTL. A schedule member left by an expired entry
  -- of the same id stays until it is due; the sweep then finds this entry
  -- without a TTL and drops only that member.
  redis.call('HSET', entry, 'v', value, 'ver', 1)
end
if ttl ~= '' then
  redis.call('PEXPIRE', entry, ttl)
  if indexed then
    schedule_expiry(schedule, id, ttl)
  end
end
-- Every live entry is in the index (expired ones leave it by the sweep or
-- a scan), so only a creation has to add the id.
if indexed and not current then
  redis.call('ZADD', index, 0, id)
  -- The entry key is the space's entry prefix followed by the id.
  sweep_expired(index, schedule, string.sub(entry, 1, #entry - #id), SWEEP_BUDGET)
end
return {1, version}
