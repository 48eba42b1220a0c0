-- set_breaker.lua: opens or closes one queue's circuit breaker by hand
-- (see breaker.lua).
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: 'open' or 'close'
-- ARGV[2]: for 'open', how long (ms): the cool-down ends then, on the
--   server's clock, and a probe follows
-- Closing publishes on the wake channel: waiting pools take jobs at once.
-- Returns 'ok'.

if ARGV[1] == 'open' then
  breaker_open(server_clock() + tonumber(ARGV[2]))
elseif ARGV[1] == 'close' then
  breaker_close()
  redis.call('PUBLISH', B .. 'wake', '1')
else
  return redis.error_reply('set_breaker.lua: unknown action ' .. tostring(ARGV[1]))
end
return 'ok'
