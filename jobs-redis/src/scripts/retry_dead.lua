-- retry_dead.lua: puts one dead job back to pending.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: ulid
-- Returns 'notfound', 'invalid:<status>' (not dead: nothing changed) or
-- 'ok': out of the dead-letter set, attempts and snoozes reset to 0, its
-- expiry dropped (its log is kept),
-- at the end of its ready list. Publishes on the wake channel.

local id = ARGV[1]
local st, rank, _, token, _, _, _, digest = load_state(id)
if not st then
  return 'notfound'
end
if st ~= 'dead' then
  return 'invalid:' .. st
end
redis.call('ZREM', B .. 'dead', id)
-- An operator's retry runs it: a fresh snooze budget, and its expiry (long
-- past, most likely) no longer applies.
redis.call('HDEL', EXPIRES, id)
redis.call('HDEL', SNOOZE, id)
redis.call('HSET', STATE, id, state_of('pending', rank, '0', token, '', '', '', digest))
moved(rank, 'dead', 'pending')
push_ready(id, rank, listed(id), false)
-- The detail is jobs_core::backend::RETRIED_DEAD.
emit('enqueued', id, '0', 'retried from the dead-letter set')
flush_stats()
wake_fetchers()
return 'ok'
