-- flow_close.lua: closes a batch (jobs_core::FlowStore::close_flow): it
-- ends once every member has, at once when they all have.
--
-- KEYS: see flows_common.lua.
-- ARGV: id.
-- Returns {'notfound'} or the releases (its callbacks, when it ended).

local id = ARGV[1]
if redis.call('EXISTS', k(id, '')) == 0 then
  return { 'notfound' }
end
redis.call('HSET', k(id, ''), 'closed', '1')
check_end(id)
return releases()
