-- Lists (ARGV[3] = '') or claims (ARGV[3] = owner) the waiting items due.
--
-- ARGV[1]  now, the caller's instant: items due at or before it
-- ARGV[2]  the most items
-- ARGV[3]  '' to list; an owner id to claim them for it
-- ARGV[4]  the claim's lease in milliseconds (claiming only)
-- Returns  {id, due time, payload, ...} in (due time, id) order.
local server_now = server_millis()
requeue_expired(server_now)
local due = due_ids(ARGV[1], tonumber(ARGV[2]))
local owner = ARGV[3]
local deadline = server_now + tonumber(ARGV[4] ~= '' and ARGV[4] or '0')
local reply = {}
for i = 1, #due, 2 do
  local id = due[i]
  if owner ~= '' then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZADD', KEYS[2], deadline, id)
    redis.call('HSET', KEYS[5], id, owner)
  end
  reply[#reply + 1] = id
  reply[#reply + 1] = redis.call('HGET', KEYS[3], id)
  reply[#reply + 1] = redis.call('HGET', KEYS[4], id)
end
return reply
