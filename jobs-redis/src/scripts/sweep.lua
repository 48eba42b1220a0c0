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
  local old = redis.call('ZRANGEBYSCORE', B .. 'done', '-inf', ms(now - keep_done_ms), 'LIMIT', 0, limit)
  for _, id in ipairs(old) do
    redis.call('ZREM', B .. 'done', id)
    local jk = jkey(id)
    local st = redis.call('HGET', jk, 'status')
    -- It may have been retried since (a dead job is not in `done`, but be
    -- safe): only finished records go.
    if st == 'succeeded' or st == 'cancelled' then
      drop_unique(jk, id)
      redis.call('DEL', jk)
    end
  end
  local expired = redis.call('ZRANGEBYSCORE', B .. 'dead', '-inf', ms(now - dead_age_ms), 'LIMIT', 0, limit)
  for _, id in ipairs(expired) do
    redis.call('ZREM', B .. 'dead', id)
    forget_dead(id)
  end
end
