-- flow_ended.lua: applies ended members to their flows, each once
-- (jobs_core::FlowStore::members_ended): a member ended already, or of a
-- flow no longer stored, changes nothing.
--
-- KEYS: see flows_common.lua.
-- ARGV: the number of ends, then per end its flow, member, status (S, d,
--   x or c) and result ('' for none).
-- Returns the releases (dependants, callbacks).

local n = tonumber(ARGV[1])
-- The ended members' statuses and dependants, one read of each per flow.
local flows, names_of = members_by_flow(n, 2, 4)
local kids_of = {}
for _, id in ipairs(flows) do
  local names = names_of[id]
  local sts, kids = hmget(k(id, ':st'), names), hmget(k(id, ':kids'), names)
  local known, ks = sts_of(id), {}
  for j = 1, #names do
    if known[names[j]] == nil then
      known[names[j]] = sts[j] or false
    end
    ks[names[j]] = kids[j] or false
  end
  kids_of[id] = ks
end
local touched = {}
for i = 0, n - 1 do
  local at = 2 + i * 4
  local id, m, st, result = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  local cur = get_st(id, m)
  if cur == 'w' or cur == 'o' or cur == 'r' then
    end_member(id, m, st, result, kids_of[id][m])
    if not touched[id] then
      touched[id] = true
      touched[#touched + 1] = id
    end
  end
end
count_down()
-- Each flow's counters written and its end checked once per call.
for _, id in ipairs(touched) do
  check_end(id)
end
return releases()
