-- fetch.lua: fetch-batch-with-lease for one queue (after common.lua,
-- promote.lua, reclaim.lua and sweep.lua, whose functions it calls).
-- Defines fetch(now, a, full, park), `now` being the server's clock (ms):
-- the fetch script calls it with its ARGV as `a` and `full` true, and an
-- enqueue hands jobs to a parked fetcher through it (hand_off below).
--
-- a[1]: max, the most jobs to lease (0: only the housekeeping below);
--   fewer when the queue's `max_running` (meta hash) leaves less room
-- a[2]: lease (ms)
-- a[3]: default_max_retries (for reclaimed jobs that carry none)
-- a[4]: batch bound for promotion, reclaim and sweeps (1000)
-- a[5]: Retention::succeeded (ms)   (a[5], [6], [7] and [9]: the
-- a[6]: Retention::dead_age (ms)     backend's; the queue's own, in its
-- a[7]: Retention::dead_max          meta hash, win: see retention_of)
-- a[8]: the crash budget (see reclaim.lua)
-- a[9]: Retention::succeeded_max
-- a[10]: the most jobs one call ends expired (jobs_core's EXPIRE_BATCH)
-- full: whether to do the housekeeping (promote, reclaim, sweep) and look
--   up the next due time; without it, next_due_in_ms is '' and no job is
--   listed dead.
-- park: nil, or {waiter id, ttl ms}: when the call leases nothing (and
--   nothing is due), the caller is parked (park_waiter below), and the
--   reply starts with one more value, '1' when it was parked, else '0'.
-- Does, atomically: promote due
-- jobs, reclaim expired leases, sweep past
-- retention, trim the dead-letter set; then, unless the queue is paused,
-- pops up to max ids, most urgent priority first and FIFO within one, and
-- leases them: one fresh fencing token T for the call (the queue's `seq`
-- counter), each job's attempt counted and started now, the lease (see
-- common.lua) expiring at now + lease.
-- A popped job whose `expires` time has passed and that has no attempt
-- counted is not leased: it ends 'expired' (kept in `done` like a
-- cancelled job) and is listed in the reply; the call pops again for the
-- room it left, ending at most a[10] jobs expired (then next_due_in_ms
-- is 0: the fetcher comes back at once for the rest). Only popped jobs are
-- looked at: no scan of the queue.
-- Returns (after the parked flag, with `park`) {next_due_in_ms or '',
--   T or '', n, then 4 values for each of the n jobs reclaim() sent to
--   the dead-letter set (ulid, name, attempts, error), then E, then 2
--   values per expired job (E of them: ulid, job name), then A (the
--   entries the retention added to the queue's archive backlog), then G
--   ('1' when the queue serves groups in turn, see groups.lua, else '0':
--   a pool then takes few of its jobs ahead of its workers), then 4
--   values per leased job:
--   ulid, record (as enqueued, see common.lua), its state before (nil for
--   a job never started: this is attempt 1; else attempt = its attempts + 1),
--   its crashes (nil for none: leases it lost before its handler started)}
-- where next_due_in_ms is how long from now (0 when past) until the
-- earliest score of `scheduled` and `leased`: when a fetcher must look
-- again even if no wake-up comes (a duration, so that the fetcher's own
-- clock plays no part); and, beside the reply, how many jobs it leased and
-- how many expired values (2 per job) it lists.
--
-- Redis commands per call, whatever the number of jobs: LPOP (per priority
-- with jobs), HMGET jobs, HMGET state (of the jobs listed with '+', which
-- have one, and HMGET crash of those), INCRBY seq, HSET state, RPUSH lease,
-- HSET leases, ZADD leased, plus the housekeeping's reads (a few commands,
-- and bounded work when something is due); when the queue holds jobs with
-- an expiry, HLEN and HMGET of `expires` too. A never-started job's new state
-- is one string shared by the whole call: no per-job string is built.


-- Parking (one hop from an enqueue to an idle pool): a fetcher that found
-- nothing and will block on its inbox `inbox:<id>` (BLPOP) is listed in
-- the sorted set `parked` (its id, scored by when the listing lapses: a
-- killed fetcher is not handed jobs past then) with its fetch's arguments
-- in the hash `park`. An enqueue that stores ready jobs hands them over
-- in its own step (hand_off): it takes a parked fetcher off the list,
-- leases for it what its own fetch would (the same code: pause, bounds,
-- rates, groups and breakers apply), and pushes that reply, packed
-- (pack_reply), to its inbox. A fetcher is handed one reply per parking
-- (its listing goes with it), so it never holds more jobs than the free
-- slots it parked with. A fetcher that stops waiting unlists itself and
-- takes what its inbox holds in one step (unpark.lua); jobs handed to a
-- fetcher that died are leased, and come back when their lease ends.

-- Lists waiter `park[1]` as parked for `park[2]` ms with its fetch's
-- arguments `a` (the first 10), its inbox emptied; listings past their
-- time are dropped first (a bounded number per call).
local function park_waiter(now, park, a)
  local id = park[1]
  local lapsed = redis.call('ZRANGEBYSCORE', B .. 'parked', '-inf', '(' .. ms(now), 'LIMIT', '0', '100')
  if #lapsed > 0 then
    zrem_many(B .. 'parked', lapsed)
    hdel_many(B .. 'park', lapsed)
  end
  redis.call('ZADD', B .. 'parked', ms(now + tonumber(park[2])), id)
  redis.call('HSET', B .. 'park', id, table.concat(a, ',', 1, 10))
  redis.call('DEL', B .. 'inbox:' .. id)
end

-- Writes lease `token` of the `nl` jobs `leased`, expiring at `till`
-- (ms): the jobs' new states (`states`, id and state pairs), the lease's
-- list of its jobs, its count of jobs not ended, and its expiry.
local function write_lease(token, states, leased, nl, till)
  hset_many(STATE, states)
  rpush_many(B .. 'lease:' .. token, leased)
  redis.call('HSET', B .. 'leases', token, ms(nl))
  redis.call('ZADD', B .. 'leased', ms(till), token)
end

-- The limits of the queue a fetch applies, from its meta fields as
-- stored (an unset one is absent or ''): whether it is paused
-- (`paused`), its `max_running` (nil: none), its `rate` (`<starts>,<window
-- ms>`) as starts and window (nil: none), and whether its breaker
-- (`bstate`) holds starts back (open, or letting one probe through).
local function queue_limits(paused, max_running, rate, bstate)
  local n, per = nil, nil
  if rate and rate ~= '' then
    local a, b = string.match(rate, '^(%d+),(%d+)$')
    n, per = tonumber(a), tonumber(b)
  end
  return paused == '1', tonumber(max_running), n, per, bstate == 'open' or bstate == 'probe'
end

-- One fetch call's state, which lease_popped() works on: `now`, its
-- time as text (`started`), the lease's token (`token`, once taken),
-- whether the queue has jobs with an expiry (`expiring`, once looked up),
-- and the lists it fills with their counts: the new states (`states`,
-- `ns`), the ids leased (`leased`, `nl`), the reply with its jobs
-- (`jobs_out`, the reply itself; `no`, where its last job value is) and
-- the jobs ended expired (`gone`, `ng`; `n_expired`).
--
-- Leases the popped entries `ids` of rank `rank` (a job past its expiry
-- ends expired instead); returns how many were leased. A grouped job
-- that is not leased gives its group's slot back (`gof`: the group of
-- each grouped entry, by place in `ids`, which took a slot when popped).
local function lease_popped(F, ids, rank, gof)
  gof = gof or {}
  if not F.token then
    F.token = ms(redis.call('INCRBY', B .. 'seq', '1'))
  end
  if F.expiring == nil then
    F.expiring = redis.call('HLEN', EXPIRES) > 0
  end
  local now, started, token, expiring = F.now, F.started, F.token, F.expiring
  local states, ns, leased, nl = F.states, F.ns, F.leased, F.nl
  local jobs_out, no, gone, ng, n_expired = F.jobs_out, F.no, F.gone, F.ng, F.n_expired
  local r = digit(rank)
  local count_ids = #ids
  -- '+' marks a job with a state field: read those states only.
  local marked, nm, olds, crashes = {}, 0, {}, {}
  for i = 1, count_ids do
    local entry = ids[i]
    if string.byte(entry, 1) == 43 then
      local id = string.sub(entry, 2)
      ids[i] = id
      nm = nm + 1
      marked[nm] = id
    end
  end
  if nm > 0 then
    local got = hmget(STATE, marked)
    local lost = hmget(CRASH, marked)
    for i = 1, nm do
      olds[marked[i]] = got[i]
      crashes[marked[i]] = lost[i]
    end
  end
  local recs = hmget(JOBS, ids)
  local exps = expiring and hmget(EXPIRES, ids) or nil
  local fresh = 'running|' .. r .. '|1|' .. token .. '|' .. started .. '|||'
  local running = 0
  -- The attempts of the jobs leased here (no list while every one is at
  -- attempt 1), for their `started` events, recorded at once below
  -- (emit_many in common.lua) from `leased` and `jobs_out`, from where
  -- this call's jobs start in them.
  local ev_atts, leased0, out0 = nil, nl, no
  for i = 1, count_ids do
    local rec = recs[i]
    if rec then
      local id = ids[i]
      local old = nm > 0 and olds[id] or false
      local st, attempts, digest = nil, nil, nil
      if old then
        local s1, _, a1, _, _, _, _, d1 = parse_state(old)
        st, attempts, digest = s1, a1, d1
      end
      local exp = exps and exps[i]
      if exp and (tonumber(attempts) or 0) == 0 and tonumber(exp) <= now then
        -- Past its expiry and never started (no attempt counted):
        -- ended, never leased.
        n_expired = n_expired + 1
        if gof[i] then
          group_ended(gof[i], id, now)
        end
        finish_record(id, 'expired', r, st or 'pending', attempts or '0', '', '', digest or '', ms(now))
        count('expired:' .. r, 1)
        emit('expired', id, attempts or '0', nil, rec)
        gone[ng + 1] = id
        gone[ng + 2] = name_of(id, rec)
        ng = ng + 2
      else
        states[ns + 1] = id
        if st then
          local attempt = ms((tonumber(attempts) or 0) + 1)
          states[ns + 2] = state_of('running', r, attempt, token, started, '', '', digest)
          gauge(r, st, -1)
          ev_atts = note_attempt(ev_atts, running + 1, attempt)
        else
          -- Never started, or a state that does not parse (written by
          -- something else): this is attempt 1.
          old = false
          states[ns + 2] = fresh
          if ev_atts then
            ev_atts[running + 1] = '1'
          end
        end
        ns = ns + 2
        nl = nl + 1
        leased[nl] = id
        running = running + 1
        jobs_out[no + 1] = id
        jobs_out[no + 2] = rec
        jobs_out[no + 3] = old
        jobs_out[no + 4] = nm > 0 and crashes[id] or false
        no = no + 4
      end
    elseif gof[i] then
      -- Gone since it was listed: its group's slot is free again.
      group_ended(gof[i], ids[i], now)
    end
  end
  emit_many('started', running, leased, leased0, ev_atts or '1', jobs_out, out0 - 2, 4)
  count('running:' .. r, running)
  F.ns, F.nl, F.no, F.ng, F.n_expired = ns, nl, no, ng, n_expired
  return running
end

-- Pops the jobs of the turns (see groups.lua): one job per member of
-- `gturn` in turn, the ungrouped jobs ('') included, until `max` are
-- popped or a whole round yields nothing; returns them per rank, and the
-- group of each (its place there). A job popped as its group's breaker's
-- probe is noted in `probes` (id: group).
local function pop_turns(now, max, probes)
  local per_rank, nper, popped = { {}, {}, {}, {} }, { 0, 0, 0, 0 }, 0
  -- The group of each entry of per_rank (its place there), for
  -- lease_popped.
  local group_at = { {}, {}, {}, {} }
  local nturn = redis.call('LLEN', B .. 'gturn')
  local idle = 0
  -- The ungrouped jobs' turn (the member ''): the most urgent rank whose
  -- ready list may hold jobs.
  local ungrouped_from = 0
  local grun = B .. 'grun'
  while popped < max and idle < nturn do
    -- A round: the turn's next members taken off its head at once, and
    -- those that stay put back at its tail in the same order, as if each
    -- had been moved there alone; their bounds, pending and running
    -- counts read in one call each (by place in the round: no table
    -- keyed by group is built per job).
    local members = redis.call('LPOP', B .. 'gturn', ms(math.min(max - popped, nturn)))
    if not members then
      break
    end
    local nm = #members
    -- The round took the whole turn: those that stay are the whole turn
    -- again, in order, and the next pass over them is made here, as the
    -- next round would make it, without putting them back and taking
    -- them off again (nor reading and writing their counts again).
    local whole = nm >= nturn
    load_bounds(members)
    local w, r = {}, {}
    if nm > 1 or members[1] ~= '' then
      w, r = read_many(GPEND, members), read_many(grun, members)
    end
    -- The pending and running counts written back, per group that
    -- yielded a job.
    local waits, runs, nw = {}, {}, 0
    local stay, nstay, left_turn, nleft, gone = {}, 0, {}, 0, {}
    -- Looked up once per round: whether any group's breaker is not
    -- closed, and the jobs popped per rank (for the `gpending` gauges).
    local brk_any = gbrk_any()
    local popped_at = { [0] = 0, 0, 0, 0 }
    -- This pass's members (places in `members`, whose counts w and r
    -- follow their jobs taken); those of the turn the last pass did not
    -- reach, when it took fewer than stay.
    local pass, np, rest = {}, nm, nil
    for j = 1, nm do
      pass[j] = j
    end
    while true do
      stay, nstay = {}, 0
      for p = 1, np do
        local j = pass[p]
        local m = members[j]
        local entry, rank = nil, nil
        if m == '' then
          for r0 = ungrouped_from, 3 do
            entry = redis.call('LPOP', ready_key(r0))
            if entry then
              rank = r0
              break
            end
            -- Found empty: nothing is pushed to it during a fetch.
            ungrouped_from = r0 + 1
          end
          if not entry then
            idle = idle + 1
          end
          nstay = nstay + 1
          stay[nstay] = j
        else
          -- Its bounds (bounds_of, inlined: this runs once per job).
          local b = BOUNDS[m]
          local limit, rate, hint = OVER_LIMIT or (b and b[1]), OVER_RATE, b and b[3] or 0
          if not rate and b and b[2] ~= '' then
            rate = b[2]
          end
          local run = r[j]
          -- Its breaker (groups.lua): open (its cool-down over, or it would
          -- be held), the job popped is its probe and leaves the group out
          -- of the turn; probing, nothing starts.
          local brk = brk_any and gbrk_state(m)
          local free = not (brk and probe_of(brk)) and (not limit or run < limit)
          -- At its rate: out of the turn until it may start again.
          local held = free and rate and rate_wait(m, rate, now) or nil
          if held then
            redis.call('ZADD', B .. 'gheld', held, m)
            HELD[m], HAS_HELD = true, true
            count('throttled', 1)
          elseif free then
            for r0 = hint, 3 do
              entry = redis.call('LPOP', gq(r0) .. m)
              if entry then
                rank = r0
                break
              end
            end
            if rank and rank > hint then
              set_rank_hint(m, rank)
            end
          end
          local left = 0
          if entry then
            left = w[j] - 1
            nw = nw + 1
            waits[2 * nw - 1], waits[2 * nw] = m, ms(left)
            runs[2 * nw - 1], runs[2 * nw] = m, ms(run + 1)
            w[j], r[j] = left, run + 1
            popped_at[rank] = popped_at[rank] + 1
            if rate or brk then
              local id = string.byte(entry, 1) == 43 and string.sub(entry, 2) or entry
              if rate then
                rate_take(m, rate, id, now)
              end
              if brk then
                probes[id] = m
              end
            end
          end
          if held or not entry or left <= 0 or brk or (limit and run + 1 >= limit) then
            -- Out of the turn: held back, or no job or no slot left.
            nturn = nturn - 1
            if not held and not entry then
              -- Out of the turn (`gon` is written with the round's) before
              -- the tidy, which looks there.
              nleft = nleft + 1
              left_turn[nleft] = m
              ON[m] = false
              group_tidy(m, run, w[j], gone)
            else
              nleft = nleft + 1
              left_turn[nleft] = m
            end
            if not held and limit and run + (entry and 1 or 0) >= limit and (left > 0 or not entry) then
              -- Jobs of the group wait for a slot.
              count('limited', 1)
            end
          else
            nstay = nstay + 1
            stay[nstay] = j
          end
        end
        if entry then
          local k = nper[rank + 1] + 1
          nper[rank + 1] = k
          per_rank[rank + 1][k] = entry
          if m ~= '' then
            group_at[rank + 1][k] = m
          end
          popped = popped + 1
          idle = 0
        end
      end
      if not whole or rest or popped >= max or idle >= nturn or nstay == 0 then
        break
      end
      -- The next pass: the first of those that stay, as many as the next
      -- round would take; the others wait at the head of the turn.
      local k = math.min(max - popped, nstay)
      if k < nstay then
        rest = {}
        for q = k + 1, nstay do
          rest[q - k] = stay[q]
        end
      end
      pass, np = stay, k
    end
    if nw > 0 then
      hset_many(GPEND, waits)
      hset_many(grun, runs)
    end
    for r0 = 0, 3 do
      if popped_at[r0] > 0 then
        count(gpending(r0), -popped_at[r0])
      end
    end
    local back = {}
    for q = 1, rest and #rest or 0 do
      back[q] = members[rest[q]]
    end
    for q = 1, nstay do
      back[#back + 1] = members[stay[q]]
    end
    rpush_many(B .. 'gturn', back)
    leave_turn(left_turn)
    tidied(gone)
  end
  return per_rank, group_at
end

local function fetch(now, a, full, park)
  local max = tonumber(a[1])
  local lease = tonumber(a[2])
  local batch = tonumber(a[4])
  local expire_max = tonumber(a[10])

  -- The queue's settings, in one read (promote, reclaim and the retention do
  -- not change them).
  local meta = redis.call('HMGET', B .. 'meta', 'paused', 'max_running', 'rate', 'group_concurrency', 'group_rate',
    'bstate', 'buntil', retention_fields())
  local dead = {}
  if full then
    promote(now, batch)
    dead = reclaim(now, batch, tonumber(a[3]), tonumber(a[8]))
    -- The queue's own retention (set_policy.lua) over the backend's.
    local keep_done, done_max, dead_age, dead_max =
      retention_of(meta, 8, tonumber(a[5]), tonumber(a[9]), tonumber(a[6]), tonumber(a[7]))
    sweep(now, keep_done, dead_age, batch, done_max)
    trim_dead(dead_max, batch, now)
  end

  -- The reply (see the top of this file), its jobs leased straight into
  -- their place (after `jobs0`) as it is when no job is found expired, the
  -- common case; the values before them set at the end, when known (a
  -- placeholder keeps each place till then, so the table grows as an
  -- array); and the jobs found expired (ulid, name). Tables filled with
  -- explicit counters (`#t` is a search in Lua 5.1).
  local jobs0 = (park and 1 or 0) + 3 + #dead + 3
  local out, no, gone, ng = {}, jobs0, {}, 0
  for i = 1, jobs0 do
    out[i] = ''
  end
  local token = nil
  local cut_short = false
  local paused, cap, q_rate_n, q_rate_per, breaking = queue_limits(meta[1], meta[2], meta[3], meta[6])
  set_overrides(meta[4], meta[5])
  -- The circuit breaker (breaker.lua): open, nothing starts until `buntil`;
  -- then one probe (also when a probe's lease lapsed).
  local breaker_wait, probing = nil, false
  if breaking then
    local till = tonumber(meta[7]) or 0
    if now < till then
      max, breaker_wait = 0, till
    else
      max, probing = math.min(max, 1), true
    end
  end
  -- The queue's rate: its starts are logged in the sorted set `qrl`, by
  -- time, and a fetch leases no more than the window has room for.
  -- Which bound cut this fetch short ('throttled' for the rate, 'limited'
  -- for `max_running`): counted when it left jobs waiting.
  local held_by = nil
  if q_rate_n and max > 0 then
    redis.call('ZREMRANGEBYSCORE', B .. 'qrl', '-inf', now - q_rate_per)
    local room = math.max(q_rate_n - redis.call('ZCARD', B .. 'qrl'), 0)
    if room < max then
      max, held_by = room, 'throttled'
    end
  end
  if cap and max > 0 then
    -- The queue's `max_running`: lease no more than the slots left.
    local running = 0
    for _, c in ipairs(redis.call('HMGET', B .. 'stats', 'running:0', 'running:1', 'running:2', 'running:3')) do
      running = running + (tonumber(c) or 0)
    end
    local room = math.max(cap - running, 0)
    if room < max then
      max, held_by = room, 'limited'
    end
  end
  local taken = 0
  if max > 0 and not paused then
    local F = {
      now = now, started = ms(now), token = nil, expiring = nil, states = {}, ns = 0, leased = {}, nl = 0,
      jobs_out = out, no = jobs0, gone = gone, ng = 0, n_expired = 0,
    }
    -- The popped jobs that are their group's breaker's probe, by id: their
    -- group.
    local probes = {}

    if has_groups() then
      release_held(now, batch)
      local per_rank, group_at = pop_turns(now, max, probes)
      for r0 = 0, 3 do
        if #per_rank[r0 + 1] > 0 then
          taken = taken + lease_popped(F, per_rank[r0 + 1], r0, group_at[r0 + 1])
        end
      end
      -- Expired jobs took room: more may wait behind them.
      cut_short = F.n_expired > 0 and taken < max
    else
      for rank = 0, 3 do
        -- Expired jobs leave room: pop again, until `max` jobs are leased, the
        -- list is empty or `expire_max` jobs expired in this call (the rest
        -- are for the next fetch, which the reply asks for at once).
        while taken < max and F.n_expired < expire_max do
          local want = max - taken
          local ids = redis.call('LPOP', ready_key(rank), ms(want))
          if not ids then
            break
          end
          taken = taken + lease_popped(F, ids, rank)
          if #ids < want then
            break
          end
        end
      end
    end
    token, no, ng = F.token, F.no, F.ng
    local leased, nl = F.leased, F.nl
    cut_short = cut_short or (F.n_expired >= expire_max and taken < max)
    if q_rate_n and nl > 0 then
      local at, starts = F.started, {}
      for i = 1, nl do
        starts[2 * i - 1], starts[2 * i] = at, leased[i] .. ':' .. at
      end
      zadd_many(B .. 'qrl', starts)
      redis.call('PEXPIRE', B .. 'qrl', ms(q_rate_per))
    end
    if probing and nl > 0 then
      breaker_probe(leased[1], now + lease)
    end
    if next(probes) then
      for i = 1, nl do
        local g = probes[leased[i]]
        if g then
          gbrk_write(g, 'probe|' .. leased[i] .. '|' .. ms(now + lease))
        end
      end
    end
    if nl > 0 then
      write_lease(token, F.states, leased, nl, now + lease)
    else
      token = nil
    end
  end
  if held_by and taken >= max and not paused and any_pending() then
    count(held_by, 1)
  end
  flush_stats(now)

  local first = nil
  if full then
    -- When a rate lets a job start again counts too: a group held back, and
    -- the queue's own window once it is full.
    if q_rate_n and redis.call('ZCARD', B .. 'qrl') >= q_rate_n then
      local oldest = redis.call('ZRANGE', B .. 'qrl', '0', '0', 'WITHSCORES')
      if oldest[2] then
        first = tonumber(oldest[2]) + q_rate_per
      end
    end
    if breaker_wait and any_pending() and (not first or breaker_wait < first) then
      first = breaker_wait
    end
    -- (`gheld` holds groups only: a queue that never had one has none.)
    for _, z in ipairs(has_groups() and { B .. 'scheduled', B .. 'leased', B .. 'gheld' }
      or { B .. 'scheduled', B .. 'leased' }) do
      local head = redis.call('ZRANGE', z, '0', '0', 'WITHSCORES')
      if head[2] then
        local t = tonumber(head[2])
        if not first or t < first then
          first = t
        end
      end
    end
  end
  -- Parks the caller (see park below) when it leased nothing, no expired job
  -- took its room, and no due time has passed.
  local k = 0
  if ng > 0 then
    -- The expired jobs' values go before the jobs.
    for i = no, jobs0 + 1, -1 do
      out[i + ng] = out[i]
    end
  end
  if park then
    local parked = not token and not cut_short and ng == 0 and not (first and first <= now)
    if parked then
      park_waiter(now, park, a)
    end
    out[1] = parked and '1' or '0'
    k = 1
  end
  out[k + 1], out[k + 2], out[k + 3] = '', token or '', ms(#dead / 4)
  k = k + 3
  for i = 1, #dead do
    out[k + i] = dead[i]
  end
  k = k + #dead + 1
  out[k] = ms(ng / 2)
  if cut_short then
    -- Expired jobs used this call's budget: more may wait behind them.
    out[1 + (park and 1 or 0)] = '0'
  elseif first then
    out[1 + (park and 1 or 0)] = ms(math.max(first - now, 0))
  end
  for i = 1, ng do
    out[k + i] = gone[i]
  end
  k = k + ng + 1
  out[k] = ms(ARCHIVED)
  k = k + 1
  out[k] = has_groups() and '1' or '0'
  return out, taken, ng
end

-- A fetch reply as one string: each value as `<length>:<bytes>`, or `-`
-- for nil (jobs_redis decodes it back into the reply). Each value is
-- joined as it is, beside its length's prefix, which is built once per
-- length: a job's values are of a few lengths, and Lua builds a number's
-- text through sprintf, and a new string for each `..`.
local function pack_reply(out)
  local parts, np, prefixes = {}, 0, {}
  for i = 1, #out do
    local v = out[i]
    if v then
      local n = #v
      local p = prefixes[n]
      if not p then
        p = n .. ':'
        prefixes[n] = p
      end
      parts[np + 1], parts[np + 2] = p, v
      np = np + 2
    else
      np = np + 1
      parts[np] = '-'
    end
  end
  return table.concat(parts, '', 1, np)
end

-- Whether a fetch would take a lone job of rank `rank` (see hand_off)
-- first, with nothing of its own to do: the queue is not paused and has
-- no `max_running`, rate, open breaker (queue_limits, as the fetch reads
-- them, from `meta`: the enqueue's read of `paused`, `max_running`, `rate`
-- and `bstate`, in its places 3 to 6), groups or event listener, and no
-- job waits before it (the ready lists of its rank and the more urgent
-- ones are empty: one EXISTS, an empty list being no key).
local function lone_is_next(rank, meta)
  if has_groups() or listening() then
    return false
  end
  local paused, cap, rate, _, breaking = queue_limits(meta[3], meta[4], meta[5], meta[6])
  if paused or cap or rate or breaking then
    return false
  end
  local lists = {}
  for r = 0, rank do
    lists[r + 1] = ready_key(r)
  end
  return redis.call('EXISTS', unpack(lists)) == 0
end

-- Leases lone job `id` (record `rec`, rank `rank`; see hand_off), not
-- listed in its ready list, for `lease_ms`, as the fetcher's own fetch
-- would: attempt 1, a lease of its own; returns the fetch's reply (see the
-- top of this file).
local function lease_lone(now, id, rec, rank, lease_ms)
  local token = ms(redis.call('INCRBY', B .. 'seq', '1'))
  local r = digit(rank)
  write_lease(token, { id, state_of('running', r, '1', token, ms(now), '', '', '') }, { id }, 1, now + lease_ms)
  count('running:' .. r, 1)
  flush_stats(now)
  return { '', token, '0', '0', ms(ARCHIVED), '0', id, rec, false, false }
end

-- Hands the queue's takeable jobs to parked fetchers (see above), one
-- after the other, until one takes fewer than it asked for (nothing it
-- could take is left) or none is parked. Returns true when the former:
-- no other fetcher need be woken for these jobs.
--
-- `meta`: the enqueue's read of the queue's settings (see lone_is_next).
-- `lone_id` and `lone_rec`, when the enqueue stored one job that may
-- start now and sets no option, and left it out of its ready list: its id
-- and record. When a fetch would take it first (lone_is_next), the first
-- fetcher is handed it without a fetch: the same lease and reply, without
-- listing it and the fetch's reads of what cannot apply (all its
-- settings, every rank's ready list, the job's record). Otherwise it is
-- listed (at the end of its ready list, as the enqueue would have) before
-- anything else. Jobs of lower priority left waiting go to the fetcher's
-- next fetch.
local function hand_off(now, lone_id, lone_rec, meta)
  local rank = lone_id and string.byte(lone_rec) - 48
  while true do
    local w = redis.call('ZRANGEBYSCORE', B .. 'parked', ms(now), '+inf', 'WITHSCORES', 'LIMIT', '0', '1')
    local id, till = w[1], w[2]
    local args = id and redis.call('HGET', B .. 'park', id)
    local a, n = {}, 0
    for v in string.gmatch(args or '', '[^,]+') do
      n = n + 1
      a[n] = v
    end
    -- The fetcher's batch size and lease length.
    local asked, lease_ms = tonumber(a[1]), tonumber(a[2])
    -- The lone job is not listed yet, and a script's writes are not rolled
    -- back by an error: it is listed now, before anything may fail, unless
    -- this fetcher takes it (its arguments read as numbers: a listing
    -- written by another build may hold others).
    if lone_id and not (asked and lease_ms and lone_is_next(rank, meta)) then
      redis.call('RPUSH', ready_key(rank), lone_id)
      lone_id = nil
    end
    if not id then
      return false
    end
    redis.call('ZREM', B .. 'parked', id)
    redis.call('HDEL', B .. 'park', id)
    if args then
      local out, taken, expired
      if lone_id then
        out, taken, expired = lease_lone(now, lone_id, lone_rec, rank, lease_ms), 1, 0
      else
        out, taken, expired = fetch(now, a, false, nil)
      end
      lone_id = nil
      if taken == 0 and expired == 0 then
        -- Nothing it may take (a paused queue, a bound): it stays parked.
        redis.call('ZADD', B .. 'parked', till, id)
        redis.call('HSET', B .. 'park', id, args)
        return false
      end
      local inbox = B .. 'inbox:' .. id
      redis.call('RPUSH', inbox, pack_reply(out))
      if taken > 0 then
        redis.call('HINCRBY', B .. 'stats', 'handed', ms(taken))
      end
      -- Kept until its fetcher's listing lapses and its jobs' lease ends
      -- (they are reclaimed then, if nobody took them).
      redis.call('PEXPIRE', inbox, ms(math.max(tonumber(till) - now, 0) + lease_ms))
      if taken < asked then
        return true
      end
    end
  end
end
