-- promote.lua: promote-due, part of the fetch script (defines promote()).
--
-- KEYS[1]: queue prefix (see common.lua).
-- Arguments: now (ms), limit (jobs per call).
-- Moves due scheduled and retrying jobs, earliest due first, to the end of
-- their priority's ready list: at most `limit` per call, so a huge backlog
-- of due jobs is moved in steps and never blocks Redis for long.
-- Returns nothing.

local function promote(now, limit)
  local due = redis.call('ZRANGEBYSCORE', B .. 'scheduled', '-inf', ms(now), 'LIMIT', 0, limit)
  local ready = { {}, {}, {}, {} } -- per rank, earliest due first
  for _, id in ipairs(due) do
    local jk = jkey(id)
    local f = redis.call('HMGET', jk, 'status', 'priority')
    if f[1] then
      set_status(jk, f[2], f[1], 'pending')
      local r = ready[tonumber(f[2]) + 1]
      r[#r + 1] = id
    end
  end
  many('ZREM', B .. 'scheduled', due)
  for rank = 0, 3 do
    many('RPUSH', B .. 'ready:' .. rank, ready[rank + 1])
  end
end
