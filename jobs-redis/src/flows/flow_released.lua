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
  redis.call('ZREM', F .. 'out', id .. '\n' .. m)
  local st = redis.call('HGET', k(id, ':st'), m)
  local t = redis.call('HGET', k(id, ':t'), m) or '|'
  local released, ended = string.match(t, '^(%d*)|(%d*)$')
  if st == 'o' then
    redis.call('HSET', k(id, ':st'), m, 'r')
    redis.call('HSET', k(id, ':t'), m, NOW .. '|' .. ended)
    redis.call('HDEL', k(id, ':spec'), m)
  elseif st == 'c' and released == '' then
    redis.call('HSET', k(id, ':t'), m, NOW .. '|' .. ended)
    local info = redis.call('HGET', k(id, ':info'), m)
    if info then
      cancel[#cancel + 1] = string.match(info, '^([^\t]*)')
    end
  end
end
return cancel
