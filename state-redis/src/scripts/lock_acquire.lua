-- Takes a free lock and issues the next fencing token, in one atomic step,
-- unless a waiter that stands before the caller in the lock's line is live.
--
-- Up to three keys per lock name, in one cluster slot (same hash tag):
--   the lease key holds '<token>:<owner id>' while the lock is held and
--   expires with the lease (PX), so "free" is decided by the server's
--   clock with no read-then-delete; a release leaves '<token>' alone in it
--   for a while (the token memory), so the next acquisition issues a
--   higher token even if the server's clock stepped back;
--   the line holds waiting acquire calls, scored by ticket (when the call
--   was made; ties go by id), and the live set the instant, in ms on the
--   server's clock, until which each stays live. Both expire a window after
--   the last waiter asked, so a lock nobody waits for has no line.
--
-- Tokens are the server's clock in microseconds, or one more than the
-- last token while the lease key remembers it, whichever is higher: they
-- increase across releases, expiries and takeovers without a counter kept
-- for good per name, and a restart that forgets the data does not make
-- them start again.
--
-- KEYS[1]  the lease
-- KEYS[2]  the line
-- KEYS[3]  the live set
-- ARGV[1]  the new owner id
-- ARGV[2]  the lease TTL in milliseconds
-- ARGV[3]  the waiter's id (its client's entry in the line), or '' for
--          try_acquire (which comes last)
-- ARGV[4]  the waiter's ticket
-- ARGV[5]  the waiter's window in milliseconds
-- ARGV[6]  the ticket of its client's next waiting call, or '': on a
--          grant the entry stays in line with it
-- Returns  {1, token} when acquired; {0, ms left on the current lease}
--          when held (-1 if that lease has no deadline); {0, ms until the
--          waiter first in line falls silent} when free but it is theirs.
local waiter = ARGV[3]
local function clock()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
-- Stands (or keeps) the caller's entry in line at `ticket`, live for a
-- window; the line expires a window after its last stand.
local function stand(ticket, now)
  local window = tonumber(ARGV[5])
  redis.call('ZADD', KEYS[2], ticket, waiter)
  redis.call('ZADD', KEYS[3], now + window, waiter)
  redis.call('PEXPIRE', KEYS[2], window)
  redis.call('PEXPIRE', KEYS[3], window)
end
-- What the lease key holds: nothing, a free lock's last token (digits
-- alone), or a holder's token and owner.
local lease = redis.call('GET', KEYS[1])
local last = 0
local held = false
if lease then
  if string.match(lease, '^%d+$') then
    last = tonumber(lease)
  else
    -- '<token>:<owner>', or a bare owner id written by an older version.
    held = true
  end
end
local first, first_ticket, now = nil, nil, nil
if redis.call('EXISTS', KEYS[3]) == 1 then
  now = clock()
  -- Entries not heard from within their window are skipped for good.
  local silent = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 64)
  if #silent > 0 then
    redis.call('ZREM', KEYS[2], unpack(silent))
    redis.call('ZREM', KEYS[3], unpack(silent))
  end
  -- The first entry other than the caller's own.
  local two = redis.call('ZRANGE', KEYS[2], 0, 1, 'WITHSCORES')
  if two[1] and two[1] ~= waiter then
    first, first_ticket = two[1], two[2]
  elseif two[3] then
    first, first_ticket = two[3], two[4]
  end
end
local ahead = false
if first then
  local theirs = tonumber(first_ticket)
  local mine = tonumber(ARGV[4])
  ahead = waiter == '' or theirs < mine or (theirs == mine and first < waiter)
end
if held or ahead then
  if waiter ~= '' then
    now = now or clock()
    stand(ARGV[4], now)
  end
  if held then
    return {0, redis.call('PTTL', KEYS[1])}
  end
  return {0, math.max(tonumber(redis.call('ZSCORE', KEYS[3], first)) - now, 0)}
end
if waiter ~= '' then
  if ARGV[6] ~= '' then
    -- The client's next call keeps its place.
    stand(ARGV[6], now or clock())
  elseif now then
    redis.call('ZREM', KEYS[2], waiter)
    redis.call('ZREM', KEYS[3], waiter)
  end
end
local time = redis.call('TIME')
-- Below 2^53 (until the year 2255), so exact in a Lua number.
local token = math.max(tonumber(time[1]) * 1000000 + tonumber(time[2]), last + 1)
redis.call('SET', KEYS[1], string.format('%.0f', token) .. ':' .. ARGV[1], 'PX', ARGV[2])
return {1, token}
