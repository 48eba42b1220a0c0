-- flow_add.lua: adds members to a batch that has not ended, all or
-- nothing, and closes it when asked (jobs_core::FlowStore::add_members).
--
-- KEYS: see flows_common.lua.
-- ARGV: id, close ('1' | '0'), the number of members, then per member its
--   name, spec, info and after (see check_members).
-- Returns {'notfound'}, {'notbatch'}, {'ended', status}, {'dup', name},
--   {'unknown', member, dependency} (nothing written), or the releases.

local id = ARGV[1]
local f = redis.call('HMGET', k(id, ''), 'kind', 'status')
if not f[1] then
  return { 'notfound' }
end
if f[1] ~= 'batch' then
  return { 'notbatch' }
end
if f[2] ~= 'running' then
  return { 'ended', f[2] }
end
local n = tonumber(ARGV[3])
local bad = check_members(id, 4, n, true)
if bad then
  return bad
end
write_members(id, 4, n)
if ARGV[2] == '1' then
  redis.call('HSET', k(id, ''), 'closed', '1')
end
check_end(id)
return releases()
