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

-- Unindexes up to `budget` ids whose deadline has passed. Creations call
-- this, and each adds one member: removing up to `budget` keeps the index
-- from growing beyond the live entries plus a backlog that only shrinks.
-- Returns how many ids were due (at most `budget`) and how many of them
-- were unindexed.
--
-- Due is decided by TIME, but the server expires keys by the clock it read
-- when the script started, which TIME overtakes while the script runs (by
-- milliseconds on a busy host). An entry due by TIME but still there by
-- that clock is rescheduled at its own deadline, so it is unindexed once
-- it has expired rather than left in the index. An entry still there
-- without a TTL was rewritten for good: only its schedule goes.
local function sweep_expired(index, schedule, entry_prefix, budget)
  local now = server_millis()
  local due = redis.call('ZRANGEBYSCORE', schedule, '-inf', now - 1, 'LIMIT', 0, budget)
  local unindexed = 0
  for _, id in ipairs(due) do
    local left = redis.call('PTTL', entry_prefix .. id)
    if left >= 0 then
      redis.call('ZADD', schedule, now + left, id)
    else
      redis.call('ZREM', schedule, id)
      if left == -2 then
        unindexed = unindexed + redis.call('ZREM', index, id)
      end
    end
  end
  return #due, unindexed
end

-- How many expired ids a creation unindexes at most.
local SWEEP_BUDGET = 4
