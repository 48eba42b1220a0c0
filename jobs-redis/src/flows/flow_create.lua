-- flow_create.lua: stores a new flow with its first members, all or
-- nothing (jobs_core::FlowStore::create_flow).
--
-- KEYS: see flows_common.lua.
-- ARGV: id, kind ('workflow' | 'batch'), closed ('1' | '0'), the number of
--   callbacks, per callback its name, spec and info; then the number of
--   members and, per member, its name, spec, info and after (see
--   check_members).
-- Returns {'exists'} (nothing written), {'dup', name},
--   {'unknown', member, dependency}, or the releases (see releases()).

local id = ARGV[1]
if redis.call('EXISTS', k(id, '')) == 1 then
  return { 'exists' }
end
local ncb = tonumber(ARGV[4])
local o = 5 + ncb * 3
local n = tonumber(ARGV[o])
local bad = check_members(id, o + 1, n, false)
if bad then
  return bad
end
redis.call('HSET', k(id, ''), 'kind', ARGV[2], 'status', 'running', 'closed', ARGV[3], 'cancelled', '0',
  'created', NOW, 'total', 0, 'ended', 0, 'ok', 0)
redis.call('ZADD', F .. 'index', now, id)
redis.call('ZADD', F .. 'index:' .. ARGV[2], now, id)
for i = 0, ncb - 1 do
  local at = 5 + i * 3
  redis.call('HSET', k(id, ':spec'), ARGV[at], ARGV[at + 1])
  redis.call('HSET', k(id, ':info'), ARGV[at], ARGV[at + 2])
  set_st(id, ARGV[at], 'w')
end
write_members(id, o + 1, n)
check_end(id)
return releases()
