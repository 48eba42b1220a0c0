-- set_breaker.lua: opens or closes one queue's circuit breaker, or one
-- group's (see breaker.lua and groups.lua), by hand.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: 'open' or 'close'
-- ARGV[2]: for 'open', how long (ms): the cool-down ends then, on the
--   server's clock, and a probe follows
-- ARGV[3]: the group's key; '' for the queue's own breaker
-- Closing publishes on the wake channel: waiting pools take jobs at once.
-- Returns 'ok'.

local group = ARGV[3]
if ARGV[1] == 'open' then
  local till = server_clock() + tonumber(ARGV[2])
  if group == '' then
    breaker_open(till)
  else
    group_breaker_open(group, till)
  end
elseif ARGV[1] == 'close' then
  if group == '' then
    breaker_close()
  else
    group_breaker_close(group)
  end
  wake_fetchers()
else
  return redis.error_reply('set_breaker.lua: unknown action ' .. tostring(ARGV[1]))
end
return 'ok'
