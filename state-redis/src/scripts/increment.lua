-- Adds to a counter stored as canonical decimal i64 text, in one atomic step.
--
-- The server does the arithmetic: HINCRBY adds on 64-bit integers with
-- exact overflow detection, and changes nothing when it refuses. It also
-- checks the stored text: it accepts exactly the canonical decimal text of
-- an i64 ('0', or an optional '-' and digits without a leading zero,
-- within range: what Rust's i64::to_string produces), which is the
-- contract's counter, and refuses anything else as "not an integer". So
-- the script only tells the two refusals apart.
--
-- Lua numbers are doubles: the sum comes back exact only below 2^53 in
-- magnitude; beyond, the script reads the stored text back instead.
--
-- KEYS[1]  the entry: a counter hash {v = value, ver = version}, or a
--          plain entry that becomes one (see entry.lua)
-- KEYS[2]  the space's index
-- KEYS[3]  the space's expiry schedule (see index.lua)
-- ARGV[1]  the delta, canonical decimal i64 text
-- ARGV[2]  the TTL in milliseconds when the counter is created, or ''
-- ARGV[3]  the id, the index member
-- ARGV[4]  '1' when the space is scanned (indexed), '' when it is
--          declared never scanned: then the entry alone is written
-- Returns  {1, value, version}, the value as an integer or as text |
--          {0, 'type'} | {0, 'overflow'} | the server's error (READONLY,
--          OOM, ...) as an error reply
local entry, index, schedule = KEYS[1], KEYS[2], KEYS[3]
local delta, ttl, id = ARGV[1], ARGV[2], ARGV[3]
local indexed = ARGV[4] == '1'

-- An absent (or expired) entry is created at 0 + delta.
local added = redis.pcall('HINCRBY', entry, 'v', delta)
if type(added) == 'table' and added.err and string.find(added.err, 'WRONGTYPE', 1, true) then
  -- A plain entry, last written by a put: it becomes a counter hash with
  -- the same value, version and deadline, and the add is tried on that.
  -- (A value that is not a counter is refused below all the same, and the
  -- hash holds what the string did: nothing is lost.) A deadline within
  -- this millisecond (PTTL 0) is kept as 1 ms: PEXPIRE 0 would delete the
  -- live entry.
  local value, version = entry_read(entry)
  local left = redis.call('PTTL', entry)
  redis.call('DEL', entry)
  redis.call('HSET', entry, 'v', value, 'ver', version)
  if left >= 0 then
    redis.call('PEXPIRE', entry, math.max(left, 1))
  end
  added = redis.pcall('HINCRBY', entry, 'v', delta)
end
if type(added) == 'table' and added.err then
  if string.find(added.err, 'overflow', 1, true) then
    return {0, 'overflow'}
  end
  if string.find(added.err, 'not an integer', 1, true) or string.find(added.err, 'WRONGTYPE', 1, true) then
    return {0, 'type'}
  end
  -- Not about the counter (a replica's READONLY, OOM, ...): the server's
  -- error as is, which the store maps like any other.
  return redis.error_reply(added.err)
end
-- Versions start at 1, so 1 means the entry was just created.
local version = redis.call('HINCRBY', entry, 'ver', 1)
if version == 1 then
  -- A live counter keeps its creation deadline: only a creation sets one.
  -- (Without one, a stale schedule member of an expired entry of the same
  -- id is dropped by the sweep, which finds the entry without a TTL.)
  if ttl ~= '' then
    redis.call('PEXPIRE', entry, ttl)
    if indexed then
      schedule_expiry(schedule, id, ttl)
    end
  end
  if indexed then
    redis.call('ZADD', index, 0, id)
    sweep_expired(index, schedule, string.sub(entry, 1, #entry - #id), SWEEP_BUDGET)
  end
end
if added > -9007199254740992 and added < 9007199254740992 then
  return {1, added, version}
end
return {1, redis.call('HGET', entry, 'v'), version}
