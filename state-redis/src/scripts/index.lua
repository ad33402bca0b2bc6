-- Index maintenance shared by put, increment, delete and scan: this file is
-- prepended to each of them (see scripts.rs), so there is one copy of it.
--
-- Beside its entries, a space has two sorted sets:
--   the index holds every live id with score 0, so ZRANGEBYLEX walks them in
--   byte order for scans;
--   the schedule holds the ids written with a TTL, scored by their deadline
--   in server milliseconds, so ids whose entry expired can be found and
--   unindexed without walking the index.
-- Redis forgets an expired entry by itself but knows nothing of the index;
-- without the schedule, ids of entries that expire and are never scanned
-- (deduplication marks, rate-limit windows) would pile up in the index
-- forever.

-- The server's clock in milliseconds. TIME is allowed before writes because
-- scripts are replicated by their effects (Redis 5 and later), not
-- re-executed.
local function server_millis()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- Records when `id` expires: `ttl` milliseconds from now, or never ('').
local function schedule_expiry(schedule, id, ttl)
  if ttl == '' then
    redis.call('ZREM', schedule, id)
  else
    redis.call('ZADD', schedule, server_millis() + tonumber(ttl), id)
  end
end

-- Unindexes up to `budget` ids whose deadline has passed. An entry that is
-- somehow live again keeps its index member; only its schedule goes.
-- Creations call this, and each adds one member: removing up to `budget`
-- keeps the index from growing beyond the live entries plus a backlog
-- that only shrinks. Returns how many ids were due (at most `budget`) and
-- how many of them were unindexed.
local function sweep_expired(index, schedule, entry_prefix, budget)
  local due = redis.call('ZRANGEBYSCORE', schedule, '-inf', server_millis() - 1, 'LIMIT', 0, budget)
  local unindexed = 0
  for _, id in ipairs(due) do
    redis.call('ZREM', schedule, id)
    if redis.call('EXISTS', entry_prefix .. id) == 0 then
      unindexed = unindexed + redis.call('ZREM', index, id)
    end
  end
  return #due, unindexed
end

-- How many expired ids a creation unindexes at most.
local SWEEP_BUDGET = 4
