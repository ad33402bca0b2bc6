-- Adds to a counter stored as canonical decimal i64 text, in one atomic step.
--
-- Lua numbers are doubles and cannot hold every i64, so this script never
-- does counter arithmetic in Lua. It checks the stored text against the
-- contract's canonical form (what Rust's i64::to_string produces) with
-- string operations only, and leaves the addition to HINCRBY, which the
-- server performs on 64-bit integers with exact overflow detection and
-- without changing anything when it refuses. Every canonical i64 text is an
-- integer HINCRBY accepts, so once the text is checked the only way HINCRBY
-- can fail is overflow. The result is read back as text, never as a Lua
-- number.
--
-- KEYS[1]  the entry hash {v = value, ver = version}
-- KEYS[2]  the space's index
-- KEYS[3]  the space's expiry schedule (see index.lua)
-- ARGV[1]  the delta, canonical decimal i64 text
-- ARGV[2]  the TTL in milliseconds when the counter is created, or ''
-- ARGV[3]  the id, the index member
-- Returns  {1, value text, version} | {0, 'type'} | {0, 'overflow'}
local entry, index, schedule = KEYS[1], KEYS[2], KEYS[3]
local delta, ttl, id = ARGV[1], ARGV[2], ARGV[3]

local I64_MAX = '9223372036854775807'
local I64_MIN_MAGNITUDE = '9223372036854775808'

-- Whether `text` is the canonical decimal text of an i64: '0', or an
-- optional '-' and digits without a leading zero, within range. Digits are
-- compared byte by byte: Lua's '<' on strings follows the server's locale.
local function is_counter(text)
  if text == '0' then
    return true
  end
  local digits = string.match(text, '^%-?([1-9][0-9]*)$')
  if not digits or #digits > 19 then
    return false
  end
  if #digits < 19 then
    return true
  end
  local limit = I64_MAX
  if string.byte(text, 1) == 45 then -- '-'
    limit = I64_MIN_MAGNITUDE
  end
  for i = 1, 19 do
    local a, b = string.byte(digits, i), string.byte(limit, i)
    if a ~= b then
      return a < b
    end
  end
  return true
end

local current = redis.call('HMGET', entry, 'v', 'ver')
if not current[2] then
  -- Absent or expired: create at 0 + delta, version 1, with the TTL.
  redis.call('HSET', entry, 'v', delta, 'ver', 1)
  if ttl ~= '' then
    redis.call('PEXPIRE', entry, ttl)
  end
  schedule_expiry(schedule, id, ttl)
  redis.call('ZADD', index, 0, id)
  sweep_expired(index, schedule, string.sub(entry, 1, #entry - #id), SWEEP_BUDGET)
  return {1, delta, 1}
end
if not is_counter(current[1]) then
  return {0, 'type'}
end
local added = redis.pcall('HINCRBY', entry, 'v', delta)
if type(added) == 'table' and added.err then
  return {0, 'overflow'}
end
-- The TTL is left alone: a live counter keeps its creation deadline.
local version = redis.call('HINCRBY', entry, 'ver', 1)
return {1, redis.call('HGET', entry, 'v'), version}
