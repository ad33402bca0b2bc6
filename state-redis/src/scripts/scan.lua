-- One page of a prefix scan over a space's index, skipping and removing
-- members whose entry has expired.
--
-- The index is a sorted set whose members all have score 0, so
-- ZRANGEBYLEX walks it in plain byte order (memcmp), which is the
-- contract's id order; the range starts at the prefix (or just after the
-- cursor) and ends before prefix .. 0xFF, a byte that never occurs in UTF-8,
-- so exactly the ids that start with the prefix fall inside. Glob
-- characters mean nothing to ZRANGEBYLEX.
--
-- The work is bounded by ARGV[5] members: a page never loops over an
-- unbounded run of stale members; it may come back short, with a cursor.
-- Entries are read in the same script as the index, so a listed entry is
-- live at this instant, and a member is only removed when its entry is
-- absent at this instant (a live entry is never unindexed).
--
-- KEYS[1]  the space's index
-- KEYS[2]  the space's expiry schedule (see index.lua)
-- ARGV[1]  the entry-key prefix of the space; entry key = ARGV[1] .. id
-- ARGV[2]  the lower bound: '[' .. prefix, or '(' .. cursor
-- ARGV[3]  the upper bound: '(' .. prefix .. '\255'
-- ARGV[4]  the page limit
-- ARGV[5]  the most members to examine (more than the limit)
-- Returns  {more, last, id1, value1, version1, pttl1, id2, ...}: more is 1
--          when members may remain after `last`, the last member examined.
local index, schedule, entry_prefix = KEYS[1], KEYS[2], ARGV[1]
local limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5])

local members = redis.call('ZRANGEBYLEX', index, ARGV[2], ARGV[3], 'LIMIT', 0, budget)
local page = {0, ''}
local found = 0
for _, id in ipairs(members) do
  local entry = entry_prefix .. id
  local value, version = entry_read(entry)
  if value then
    if found == limit then
      -- A live entry beyond the page: there is more.
      page[1] = 1
      return page
    end
    found = found + 1
    page[#page + 1] = id
    page[#page + 1] = value
    page[#page + 1] = version
    page[#page + 1] = redis.call('PTTL', entry)
  else
    redis.call('ZREM', index, id)
    redis.call('ZREM', schedule, id)
  end
  page[2] = id
end
if #members == budget then
  -- The budget ran out before the range did.
  page[1] = 1
end
return page
