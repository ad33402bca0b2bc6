-- How an entry is stored, shared by every script that reads or writes one:
-- this file is prepended to them (see statements.rs), so there is one copy;
-- entry_write.lua, prepended to the puts and deletes, has the rest. (Every
-- function prepended is built again on each call of the script, so each
-- script gets only the files it uses.)
--
-- A plain entry is one string key, '<version>:<value>': the version in
-- decimal, then the value's bytes as they are. Writing one is a single SET,
-- which also sets or clears the TTL and replaces whatever was there; a
-- creation is a single SET NX. The version never contains ':', so the
-- first ':' ends it whatever bytes the value holds.
--
-- A counter is a hash {v = value, ver = version}, so that HINCRBY adds to
-- it with the server's exact 64-bit arithmetic (Lua numbers are doubles).
-- An increment turns a plain entry into a counter hash first (increment.lua)
-- and a put turns a counter back into a plain entry. Entries written by
-- earlier versions of this crate are all hashes: they read and write like
-- counters, and no migration step is needed.

-- The value and version of the entry at `key`, or false when absent.
local function entry_read(key)
  local packed = redis.pcall('GET', key)
  if type(packed) == 'table' then
    local fields = redis.call('HMGET', key, 'v', 'ver')
    return fields[1], fields[2]
  end
  if not packed then
    return false
  end
  local colon = string.find(packed, ':', 1, true)
  return string.sub(packed, colon + 1), string.sub(packed, 1, colon - 1)
end
