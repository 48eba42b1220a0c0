-- flow_stale.lua: hands out again releases not reported in time (their
-- relay died) (jobs_core::FlowStore::stale_releases).
--
-- KEYS: see flows_common.lua.
-- ARGV: how old (ms) a release must be, the most to hand out.
-- Returns the releases. A member cancelled while being released is handed
-- out too: enqueueing it stores nothing new when it was enqueued, and its
-- report tells the relay to cancel it.

local entries = redis.call('ZRANGEBYSCORE', F .. 'out', '-inf', now - tonumber(ARGV[1]), 'LIMIT', 0, tonumber(ARGV[2]))
for _, e in ipairs(entries) do
  local id, m = string.match(e, '^(.-)\n(.*)$')
  local st = redis.call('HGET', k(id, ':st'), m)
  if st == 'o' or st == 'c' then
    release(id, m)
  else
    redis.call('ZREM', F .. 'out', e)
  end
end
return releases()
