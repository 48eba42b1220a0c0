-- reclaim.lua: reclaim-expired, part of the fetch script (defines reclaim()).
--
-- KEYS[1]: queue prefix (see common.lua).
-- Arguments: now (ms), limit (jobs per call, counted in whole leases),
-- default_max_retries (for jobs that carry none).
-- Takes back jobs whose lease expired before `now` (their worker crashed,
-- was killed or stalled): the attempt counts as failed with LEASE_LOST; a
-- job out of attempts goes dead (so a job that kills every worker ends in
-- the dead-letter set), a cancel-requested one ends cancelled, any other
-- goes to the end of its ready list. Live leases are never touched, and two
-- pools reclaiming at once cannot take a job twice (the script is atomic).
-- Returns nothing.

local function reclaim(now, limit, default_max)
  local expired = redis.call('ZRANGEBYSCORE', B .. 'leased', '-inf', ms(now), 'LIMIT', 0, limit)
  local now_s = ms(now)
  local seen = 0
  for _, lease in ipairs(expired) do
    -- Whole leases, until `limit` jobs were looked at.
    if seen >= limit then
      break
    end
    local ids = redis.call('LRANGE', B .. 'lease:' .. lease, 0, -1)
    drop_lease(lease)
    seen = seen + #ids
    local states = #ids > 0 and hmget(STATE, ids) or {}
    for i, id in ipairs(ids) do
      if states[i] then
        local st, rank, attempts, token, t1, _, cancel, digest = parse_state(states[i])
        -- Jobs of the lease that finished, or run again under another
        -- lease, are not its own any more.
        if st == 'running' and token == lease then
          log_attempt(id, attempts, t1, now_s, LEASE_LOST)
          ended_attempt('failed', rank)
          local rec = redis.call('HGET', JOBS, id) or ''
          local _, max_retries = record_head(rec)
          local max = tonumber(max_retries) or default_max
          if cancel == '1' then
            finish_record(id, 'cancelled', rank, st, attempts, token, t1, digest, now_s)
          elseif (tonumber(attempts) or 0) > max then
            to_dead(id, rank, st, attempts, token, t1, digest, now_s)
          else
            redis.call('HSET', STATE, id, state_of('pending', rank, attempts, token, '', '', '', digest))
            moved(rank, st, 'pending')
            redis.call('RPUSH', B .. 'ready:' .. rank, listed(id))
          end
        end
      end
    end
  end
end
