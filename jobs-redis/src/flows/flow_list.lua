-- flow_list.lua: a page of flows, newest first (jobs_core::FlowStore::flows).
--
-- KEYS: see flows_common.lua.
-- ARGV: kind ('' for every kind, else 'workflow' or 'batch'), offset,
--   limit (at least 1).
-- Returns per flow {id, kind, status, closed, created, ended_at, total,
--   ended, ok}.

local index = ARGV[1] == '' and (F .. 'index') or (F .. 'index:' .. ARGV[1])
local off = tonumber(ARGV[2])
local ids = redis.call('ZREVRANGE', index, off, off + tonumber(ARGV[3]) - 1)
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', k(id, ''), 'kind', 'status', 'closed', 'created', 'ended_at', 'total', 'ended', 'ok')
  if f[1] then
    out[#out + 1] = { id, f[1], f[2], f[3], f[4], f[5] or '', f[6], f[7], f[8] }
  end
end
return out
