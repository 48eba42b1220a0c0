-- flow_cancel.lua: cancels a flow (jobs_core::FlowStore::cancel_flow):
-- members not released end cancelled at once; released ones are returned
-- for the caller to cancel in their queues (their ends follow as usual).
--
-- KEYS: see flows_common.lua.
-- ARGV: id.
-- Returns {0} when no such flow runs, else {1, then per released member
--   its name and job id}.

local id = ARGV[1]
if redis.call('HGET', k(id, ''), 'status') ~= 'running' then
  return { 0 }
end
redis.call('HSET', k(id, ''), 'cancelled', '1', 'closed', '1')
local out = { 1 }
local members = redis.call('LRANGE', k(id, ':order'), 0, -1)
for _, m in ipairs(members) do
  local st = redis.call('HGET', k(id, ':st'), m)
  if st == 'r' then
    local info = redis.call('HGET', k(id, ':info'), m)
    out[#out + 1] = m
    out[#out + 1] = string.match(info or '', '^([^\t]*)')
  elseif st == 'w' or st == 'o' then
    set_end(id, m, 'c')
  end
end
check_end(id)
CHANGED = true
releases()
return out
