-- flow_released.lua: records that released members' jobs are enqueued
-- (jobs_core::FlowStore::members_released).
--
-- KEYS: see flows_common.lua.
-- ARGV: the number of releases, then per release its flow and member.
-- Returns the job ids of members cancelled while being released (their
-- flow was cancelled): the caller cancels those jobs.

local n = tonumber(ARGV[1])
local cancel = {}
for i = 0, n - 1 do
  local id, m = ARGV[2 + i * 2], ARGV[3 + i * 2]
  local handed_out = redis.call('ZREM', F .. 'out', id .. '\n' .. m) == 1
  local st = redis.call('HGET', k(id, ':st'), m)
  if st == 'o' then
    redis.call('HSET', k(id, ':st'), m, 'r')
    redis.call('HDEL', k(id, ':spec'), m)
  elseif st == 'c' and handed_out then
    -- Cancelled while being enqueued (or its job was cancelled already:
    -- cancelling it again changes nothing).
    local info = redis.call('HGET', k(id, ':info'), m)
    if info then
      cancel[#cancel + 1] = string.match(info, '^([^\t]*)')
    end
  end
end
return cancel
