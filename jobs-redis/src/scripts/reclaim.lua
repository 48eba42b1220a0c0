-- reclaim.lua: reclaim-expired, part of the fetch script (defines reclaim()).
--
-- KEYS[1]: queue prefix (see common.lua).
-- Arguments: now (ms), limit (jobs per call), default_max_retries (for jobs
-- that carry none).
-- Takes back jobs whose lease expired before `now` (their worker crashed,
-- was killed or stalled): the attempt counts as failed with LEASE_LOST; a
-- job out of attempts goes dead (so a job that kills every worker ends in
-- the dead-letter set), a cancel-requested one ends cancelled, any other
-- goes to the end of its ready list. Live leases are never touched, and two
-- pools reclaiming at once cannot take a job twice (the script is atomic).
-- Returns nothing.

local function reclaim(now, limit, default_max)
  local expired = redis.call('ZRANGEBYSCORE', B .. 'leased', '-inf', ms(now), 'LIMIT', 0, limit)
  for _, id in ipairs(expired) do
    redis.call('ZREM', B .. 'leased', id)
    local jk = jkey(id)
    local f = redis.call('HMGET', jk, 'status', 'priority', 'max_retries', 'attempts', 'cancel')
    if f[1] then
      local rank = f[2]
      end_attempt(jk, ms(now), LEASE_LOST)
      ended_attempt('failed', rank)
      local max = tonumber(f[3]) or default_max
      if f[5] == '1' then
        finish_record(id, jk, rank, f[1], 'cancelled', ms(now))
      elseif (tonumber(f[4]) or 0) > max then
        to_dead(id, jk, rank, f[1], ms(now))
      else
        set_status(jk, rank, f[1], 'pending')
        redis.call('RPUSH', B .. 'ready:' .. rank, id)
      end
    end
  end
end
