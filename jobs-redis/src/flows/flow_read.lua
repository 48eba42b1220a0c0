-- flow_read.lua: one flow with its members (jobs_core::FlowStore::flow,
-- flow_page and flow_member).
--
-- KEYS: see flows_common.lua.
-- ARGV: id, then which members: 'all'; 'page', offset, limit (in the
--   order they were added); or 'member', name (a member or a callback).
-- Returns {} for no such flow, else {record (HGETALL), members, statuses,
--   infos, afters, release times, end times, callbacks, their statuses,
--   infos, release times, end times}: the members in the order they were
--   added, each array aligned with them.

local id = ARGV[1]
local rec = redis.call('HGETALL', k(id, ''))
if #rec == 0 then
  return {}
end
local members, only = nil, nil
if ARGV[2] == 'page' then
  local off, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
  -- LRANGE's end is inclusive: a page of none reads no member.
  members = limit > 0 and redis.call('LRANGE', k(id, ':order'), off, off + limit - 1) or {}
elseif ARGV[2] == 'member' then
  -- A callback is listed with the callbacks, a member with the members.
  only = ARGV[3]
  local is_callback = string.sub(only, 1, 1) == '@'
  members = (not is_callback and redis.call('HEXISTS', k(id, ':st'), only) == 1) and { only } or {}
else
  members = redis.call('LRANGE', k(id, ':order'), 0, -1)
end
local function fields(part, names)
  if #names == 0 then
    return {}
  end
  local out = {}
  for i = 1, #names, 1000 do
    local got = redis.call('HMGET', k(id, part), unpack(names, i, math.min(i + 999, #names)))
    for j = 1, #got do
      out[#out + 1] = got[j] or ''
    end
  end
  return out
end
local cbs = {}
for _, cb in ipairs({ '@on_success', '@on_complete' }) do
  if (not only or only == cb) and redis.call('HEXISTS', k(id, ':info'), cb) == 1 then
    cbs[#cbs + 1] = cb
  end
end
return { rec, members, fields(':st', members), fields(':info', members), fields(':after', members),
  fields(':tr', members), fields(':te', members), cbs, fields(':st', cbs), fields(':info', cbs), fields(':tr', cbs),
  fields(':te', cbs) }
