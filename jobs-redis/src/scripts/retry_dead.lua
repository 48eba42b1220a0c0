-- retry_dead.lua: puts one dead job back to pending.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: ulid
-- Returns 'notfound', 'invalid:<status>' (not dead: nothing changed) or
-- 'ok': out of the dead-letter set, attempts reset to 0 (its log is kept),
-- at the end of its ready list. Publishes on the wake channel.

local id = ARGV[1]
local jk = jkey(id)
local f = redis.call('HMGET', jk, 'status', 'priority')
if not f[1] then
  return 'notfound'
end
if f[1] ~= 'dead' then
  return 'invalid:' .. f[1]
end
redis.call('ZREM', B .. 'dead', id)
set_status(jk, f[2], 'dead', 'pending')
redis.call('HSET', jk, 'attempts', '0')
redis.call('HDEL', jk, 'finished_ms')
redis.call('RPUSH', B .. 'ready:' .. f[2], id)
flush_stats()
redis.call('PUBLISH', B .. 'wake', '1')
return 'ok'
