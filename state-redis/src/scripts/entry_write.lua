-- The writing half of entry.lua's functions (see there for the format),
-- prepended after it to the puts and deletes.

-- The longest version: u64's 20 digits, then ':'.
local VERSION_HEAD = 20

-- The version of the entry at `key` (decimal text), or false when absent.
-- Reads only the head of a plain entry, not its value.
local function entry_version(key)
  local head = redis.pcall('GETRANGE', key, 0, VERSION_HEAD)
  if type(head) == 'table' then
    -- WRONGTYPE: a counter hash (anything else fails here, loudly).
    return redis.call('HGET', key, 'ver')
  end
  if head == '' then
    return false
  end
  return string.sub(head, 1, string.find(head, ':', 1, true) - 1)
end

-- Writes a plain entry at `version` (text) with `value`, for `ttl`
-- milliseconds or ('') for good; replaces whatever was at `key`.
local function entry_write(key, version, value, ttl)
  if ttl == '' then
    redis.call('SET', key, version .. ':' .. value)
  else
    redis.call('SET', key, version .. ':' .. value, 'PX', ttl)
  end
end

-- Creates a plain entry at version 1 if `key` holds nothing live; true when
-- it did.
local function entry_create(key, value, ttl)
  if ttl == '' then
    return redis.call('SET', key, '1:' .. value, 'NX') ~= false
  end
  return redis.call('SET', key, '1:' .. value, 'NX', 'PX', ttl) ~= false
end

-- One more than `version`, in decimal text, exact for any length (the
-- version is never parsed into a Lua number).
local function next_version(version)
  local last = #version
  while last > 0 and string.byte(version, last) == 57 do -- '9'
    last = last - 1
  end
  if last == 0 then
    return '1' .. string.rep('0', #version)
  end
  return string.sub(version, 1, last - 1) .. string.char(string.byte(version, last) + 1)
    .. string.rep('0', #version - last)
end
