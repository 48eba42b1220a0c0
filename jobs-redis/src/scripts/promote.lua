-- promote.lua: promote-due, part of the fetch script (defines promote()).
--
-- KEYS[1]: queue prefix (see common.lua).
-- Arguments: now (ms), limit (jobs per call).
-- Moves due scheduled and retrying jobs, earliest due first, to the end of
-- their priority's ready list: at most `limit` per call, so a huge backlog
-- of due jobs is moved in steps and never blocks Redis for long. A job that
-- never started and has no deduplication key loses its state field again
-- (a pending job's default).
-- Returns nothing.

local function promote(now, limit)
  local due = redis.call('ZRANGEBYSCORE', B .. 'scheduled', '-inf', ms(now), 'LIMIT', '0', ms(limit))
  if #due == 0 then
    return
  end
  local states = hmget(STATE, due)
  local ready = { {}, {}, {}, {} } -- per rank, earliest due first
  local writes, fresh = {}, {}
  for i, id in ipairs(due) do
    if states[i] then
      local st, rank, attempts, token, _, _, _, digest = parse_state(states[i])
      if st == 'scheduled' or st == 'retrying' then
        moved(rank, st, 'pending')
        local r = ready[tonumber(rank) + 1]
        if (attempts == '' or attempts == '0') and digest == '' then
          fresh[#fresh + 1] = id
          r[#r + 1] = id
        else
          writes[#writes + 1] = id
          writes[#writes + 1] = state_of('pending', rank, attempts, token, '', '', '', digest)
          r[#r + 1] = listed(id)
        end
      end
    end
  end
  zrem_many(B .. 'scheduled', due)
  hset_many(STATE, writes)
  hdel_many(STATE, fresh)
  for rank = 0, 3 do
    if has_groups() then
      for _, entry in ipairs(ready[rank + 1]) do
        local id = string.byte(entry, 1) == 43 and string.sub(entry, 2) or entry
        push_ready(id, rank, entry, false)
      end
    elseif ready[rank + 1][1] then
      rpush_many(ready_key(rank), ready[rank + 1])
    end
  end
end
