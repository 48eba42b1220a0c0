-- flow_released.lua: records that released members' jobs are enqueued
-- (jobs_core::FlowStore::members_released).
--
-- KEYS: see flows_common.lua.
-- ARGV: the number of releases, then per release its flow and member.
-- Returns the job ids of members cancelled while being released (their
-- flow was cancelled): the caller cancels those jobs.

local n = tonumber(ARGV[1])
local cancel = {}
-- The releases by flow, each flow's statuses read at once.
local flows, names_of = members_by_flow(n, 2, 2)
-- Their `out` entries, taken out in one call (but those of cancelled
-- members: whether this call took one out decides whether it cancels).
local entries, ne = {}, 0
for _, id in ipairs(flows) do
  local names = names_of[id]
  local sts = hmget(k(id, ':st'), names)
  local specs, nspec = {}, 0
  for j = 1, #names do
    local m, st = names[j], sts[j]
    local entry = id .. '\n' .. m
    if st == 'c' then
      -- Cancelled while being enqueued (or its job was cancelled already:
      -- cancelling it again changes nothing).
      if redis.call('ZREM', F .. 'out', entry) == 1 then
        local info = redis.call('HGET', k(id, ':info'), m)
        if info then
          cancel[#cancel + 1] = string.match(info, '^([^\t]*)')
        end
      end
    else
      ne = ne + 1
      entries[ne] = entry
      if st == 'o' then
        later(k(id, ':st'), m, 'r')
        nspec = nspec + 1
        specs[nspec] = m
      end
    end
  end
  for j = 1, nspec, 1000 do
    redis.call('HDEL', k(id, ':spec'), unpack(specs, j, math.min(j + 999, nspec)))
  end
end
for j = 1, ne, 1000 do
  redis.call('ZREM', F .. 'out', unpack(entries, j, math.min(j + 999, ne)))
end
flush()
return cancel
