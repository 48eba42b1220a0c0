-- reclaim.lua: reclaim-expired, part of the fetch script (defines reclaim()).
--
-- KEYS[1]: queue prefix (see common.lua).
-- Arguments: now (ms), limit (jobs per call, counted in whole leases),
-- default_max_retries (for jobs that carry none), max_crashes (the crash
-- budget).
-- Takes back jobs whose lease expired before `now` (their worker crashed,
-- was killed or stalled). A job whose handler had started (its `started`
-- mark names this lease) had an attempt: it counts as failed with
-- LEASE_LOST, and a job out of attempts goes dead (so a job that kills
-- every worker ends in the dead-letter set). A job whose handler never
-- started did not run: its attempt is taken back and the loss counted in
-- `crash` instead; past the crash budget it goes dead. A cancel-requested
-- one ends cancelled; any other goes to the end of its ready list. Live leases are never touched, and two
-- pools reclaiming at once cannot take a job twice (the script is atomic).
-- Returns the jobs it sent to the dead-letter set, 4 values each: ulid, job
-- name, attempts, error. Their pool died with them, so the fetching pool is
-- the only one that can report these deaths, and no other call lists them.

local function reclaim(now, limit, default_max, max_crashes)
  local dead, nd = {}, 0
  local expired = redis.call('ZRANGEBYSCORE', B .. 'leased', '-inf', ms(now), 'LIMIT', '0', ms(limit))
  local now_s = ms(now)
  local seen = 0
  for _, lease in ipairs(expired) do
    -- Whole leases, until `limit` jobs were looked at.
    if seen >= limit then
      break
    end
    local ids = redis.call('LRANGE', B .. 'lease:' .. lease, '0', '-1')
    drop_lease(lease)
    seen = seen + #ids
    local states = #ids > 0 and hmget(STATE, ids) or {}
    local marks = #ids > 0 and hmget(STARTED, ids) or {}
    for i, id in ipairs(ids) do
      if states[i] then
        local st, rank, attempts, token, t1, _, cancel, digest = parse_state(states[i])
        -- Jobs of the lease that finished, or run again under another
        -- lease, are not its own any more.
        if st == 'running' and token == lease then
          -- Its group's slot is free (before it is pending again).
          local g = group_of(id)
          if g then
            group_ended(g, id, now)
          end
          local err, counted = LEASE_LOST, true
          if marks[i] ~= lease and cancel ~= '1' then
            -- Its handler never started: not an attempt but a crash, until
            -- the crash budget is spent.
            local crashes = redis.call('HINCRBY', CRASH, id, 1)
            if crashes > max_crashes then
              err = crash_budget_error(crashes)
            else
              counted = false
            end
          end
          if not counted then
            local before = ms(math.max((tonumber(attempts) or 1) - 1, 0))
            redis.call('HSET', STATE, id, state_of('pending', rank, before, token, '', '', '', digest))
            moved(rank, st, 'pending')
            push_ready(id, rank, listed(id), false)
          else
            log_attempt(id, attempts, t1, now_s, err)
            ended_attempt('failed', rank)
            local rec = redis.call('HGET', JOBS, id) or ''
            local _, max_retries = record_head(rec)
            local max = tonumber(max_retries) or default_max
            if cancel == '1' then
              finish_record(id, 'cancelled', rank, st, attempts, token, t1, digest, now_s)
              emit('cancelled', id, attempts, err, rec)
            elseif err ~= LEASE_LOST or (tonumber(attempts) or 0) > max then
              to_dead(id, rank, st, attempts, token, t1, digest, now_s)
              emit('dead', id, attempts, err, rec)
              dead[nd + 1], dead[nd + 2], dead[nd + 3], dead[nd + 4] = id, name_of(id, rec), attempts or '0', err
              nd = nd + 4
            else
              emit('retrying', id, attempts, err, rec)
              redis.call('HSET', STATE, id, state_of('pending', rank, attempts, token, '', '', '', digest))
              moved(rank, st, 'pending')
              push_ready(id, rank, listed(id), false)
            end
          end
        end
      end
    end
    if #ids > 0 then
      hdel_many(STARTED, ids)
    end
  end
  return dead
end
