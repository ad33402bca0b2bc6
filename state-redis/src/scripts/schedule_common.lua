-- Schedules, shared by the schedule scripts: this file is prepended to each
-- of them (see statements.rs), so there is one copy of it.
--
-- A space's schedule is five keys under the space's hash tag (one slot):
--   KEYS[1]  waiting: sorted set of unclaimed ids scored by due time (ms
--            since the epoch); members of equal score sort by their bytes,
--            so ZRANGEBYSCORE walks them in the contract's (due_at, id)
--            order
--   KEYS[2]  claimed: sorted set of claimed ids scored by their lease's
--            deadline on this server's clock (ms)
--   KEYS[3]  due times: hash id -> due time (kept while claimed)
--   KEYS[4]  payloads: hash id -> payload
--   KEYS[5]  owners: hash id -> the owner id of its claim
-- An item is in exactly one of the two sorted sets.

-- The server's clock in milliseconds. TIME is allowed before writes because
-- scripts are replicated by their effects (Redis 5 and later), not
-- re-executed.
local function server_millis()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- Puts every item whose claim's lease has passed back among the waiting.
-- Each claim is put back once, so this costs the claims that expired.
local function requeue_expired(now)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
  for _, id in ipairs(expired) do
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[5], id)
    redis.call('ZADD', KEYS[1], redis.call('HGET', KEYS[3], id), id)
  end
end

-- Up to `limit` waiting ids due at `due_by`, in order, with their due times.
local function due_ids(due_by, limit)
  return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', due_by, 'WITHSCORES', 'LIMIT', 0, limit)
end

-- Whether `owner`'s claim of `id` holds at `now`.
local function held(id, owner, now)
  if redis.call('HGET', KEYS[5], id) ~= owner then
    return false
  end
  local deadline = redis.call('ZSCORE', KEYS[2], id)
  return deadline ~= false and tonumber(deadline) > now
end
