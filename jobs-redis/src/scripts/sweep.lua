-- sweep.lua: retention, part of the fetch script (defines sweep()).
--
-- KEYS[1]: queue prefix (see common.lua).
-- Arguments: now (ms), keep_done_ms (Retention::succeeded), dead_age_ms
-- (Retention::dead_age), limit (records per kind and call).
-- Deletes succeeded and cancelled jobs (with their results) finished at
-- least keep_done_ms ago, and dead jobs that died at least dead_age_ms ago,
-- oldest first, at most `limit` of each per call. (The count bound of the
-- dead-letter set is trim_dead in common.lua.)
-- Returns nothing.

local function sweep(now, keep_done_ms, dead_age_ms, limit)
  -- `done` is newest first: the oldest are at its end.
  local tail = redis.call('LRANGE', B .. 'done', -limit, -1)
  if #tail > 0 then
    local states = hmget(STATE, tail)
    local cutoff = now - keep_done_ms
    local gone, k = {}, 0
    for i = #tail, 1, -1 do
      if states[i] then
        local st, _, _, _, _, finished = parse_state(states[i])
        -- It may have been retried since (a dead job is not in `done`, but
        -- be safe): only finished records go.
        if st == 'succeeded' or st == 'cancelled' then
          if (tonumber(finished) or 0) > cutoff then
            break
          end
          gone[#gone + 1] = tail[i]
        end
      end
      k = k + 1
    end
    if k > 0 then
      redis.call('LTRIM', B .. 'done', 0, -k - 1)
      forget(gone)
    end
  end
  local expired = redis.call('ZRANGEBYSCORE', B .. 'dead', '-inf', ms(now - dead_age_ms), 'LIMIT', 0, limit)
  if #expired > 0 then
    zrem_many(B .. 'dead', expired)
    forget_dead(expired)
  end
end
