-- set_paused.lua: pause / resume one queue.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: '1' to pause, '0' to resume
-- Sets `paused` in the queue's meta hash (fetch then skips taking jobs; it
-- still promotes and reclaims). On resume, publishes on the wake channel so
-- idle fetchers look at once.
-- Returns 'ok'.

redis.call('HSET', B .. 'meta', 'paused', ARGV[1])
if ARGV[1] == '0' then
  wake_fetchers()
end
return 'ok'
