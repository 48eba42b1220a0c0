-- finish.lua: records a batch of finished attempts of one queue (ack with
-- result, fail with retry-at, dead, hand back).
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: Retention::dead_max, unless the queue sets its own (the
--   dead-letter set is trimmed after; see retention_of in common.lua)
-- ARGV[2]: n, the number of items (each job at most once); then the items
--   in runs of one token and one kind: the token, the kind, the number of
--   items in the run, then per item its ulid and the kind's arguments (each
--   argument a script is sent costs it a Lua string: a run of successes
--   of one lease is one argument per job). The kinds:
--   'ok'                 succeeded, no result
--   'okr' result         succeeded with a result (JSON)
--   'retry' error at     failed, run again at `at` ('+<ms>' after the
--                        server's now, or '<ms>': see due_at in common.lua)
--   'dead' error         failed for good; the dead-letter set is ordered by
--                        the server's clock to the microsecond
--   'release' reason at  handed back without counting the attempt (reason
--                        not stored), pending again at `at` ('' = now)
--   'snooze' reason at limit error
--                        the job snoozed: not an attempt (counted back as
--                        for 'release'), logged with its reason and
--                        duration, due again at `at`; its `snooze` count
--                        goes up, and past `limit` it is dead with `error`
--                        instead
--   'limited' reason at limit error
--                        as 'snooze', and the job's group (if any) waits
--                        until `at` too (hold_group, groups.lua)
--   'start'              not an end: the handler starts under this lease
--                        (recorded in `started`, see reclaim.lua); the job
--                        keeps running
-- Finish times are the server's clock, read once.
-- Returns one character per item, the job's status afterwards: 'S'
-- succeeded, 'c' cancelled, 'r' retrying, 'd' dead, 'p' pending, 's'
-- scheduled, 'R' running (a start); or 'x' (stale) when the job is not running under this token
-- any more (its lease expired and it was reclaimed or taken again, or it is
-- gone): the newer attempt wins. A job whose cancel was requested ends
-- cancelled whatever the outcome. Publishes on the wake channel when a job
-- became pending or scheduled again, or when running jobs of a queue with
-- a `max_running` bound ended (their slots are free).
--
-- Redis commands per batch of successes, whatever its size: HMGET state,
-- HMGET meta (the breakers, `max_running`, the retention), HSET state, HDEL started, LPUSH done, HINCRBY per lease left (and the lease's deletion
-- by its last job), HINCRBY stats and history. Jobs of one lease share
-- their running state's text, so it is parsed once per lease, and their
-- new state's text is built once. Failures add a read and a write of their
-- `log` field each.

local now_n, now_us = server_clock()
local now = ms(now_n)
local n = tonumber(ARGV[2])

-- Read the whole batch before writing anything: a script's writes are not
-- rolled back by an error. Each item's ulid, and each run's token, kind,
-- number of items, where its first item starts (ARGV[o], its ulid, then
-- its kind's arguments) and how far apart its items are.
local ids, runs, nruns = {}, {}, 0
do
  local ARITY = { start = 3, ok = 3, okr = 4, dead = 4, retry = 5, release = 5, snooze = 7, limited = 7 }
  local o, i = 3, 0
  while i < n do
    local token, kind, c = ARGV[o], ARGV[o + 1], tonumber(ARGV[o + 2])
    -- ARITY counts the ulid, the token and the kind: an item of a run
    -- sends the ulid and the rest.
    local arity = ARITY[kind]
    if not arity then
      return redis.error_reply('finish.lua: unknown kind ' .. tostring(kind))
    end
    if not c or c < 1 or i + c > n or not ARGV[o + 2 + c * (arity - 2)] then
      return redis.error_reply('finish.lua: a run of ' .. tostring(ARGV[o + 2]) .. ' ' .. kind
        .. ' items that does not match the arguments sent')
    end
    o = o + 3
    nruns = nruns + 1
    runs[nruns] = { token, kind, c, o, arity - 2 }
    for _ = 1, c do
      i = i + 1
      ids[i] = ARGV[o]
      o = o + arity - 2
    end
  end
end
if n == 0 then
  return ''
end

local out = {}
local wake, dead = false, false
-- Tables filled with explicit counters (`#t` is a search in Lua 5.1).
local states, ns, done, nd, results = {}, 0, {}, 0, {}
-- The attempts of the jobs in `done` (no list while every one is 1), for
-- their `succeeded` events (recorded at once at the end: emit_many in
-- common.lua).
local done_atts = nil
local released = { {}, {}, {}, {} } -- per rank, in batch order
local processed = { 0, 0, 0, 0 } -- successes per rank
local left = {} -- per lease token: its jobs that stopped running here
local starts, nst, ended, ne = {}, 0, {}, 0 -- `started` marks to set, to drop
local olds = hmget(STATE, ids)
-- The queue's settings this call needs, in one read: its breakers, its
-- `max_running` (for the wake-up at the end) and its retention (for the
-- dead-letter trim).
local meta = redis.call('HMGET', B .. 'meta', 'breaker', 'bstate', 'bprobe', 'max_running', 'group_breaker',
  retention_fields())
breaker_set(meta[1], meta[2], meta[3])
local group_breaker = group_breaker_config(meta[5])
-- Whether a job's success may close the queue's breaker: only its probe's
-- does, and only a fetch leases a probe.
local probing = breaker_load()[4] == 'probe'
-- Whether the jobs may have groups, whose breakers count their attempts.
local grouped = has_groups()
-- Parsed states by their text (jobs of one lease share theirs): status,
-- rank, attempts, token, t1, cancel, digest, and once needed the
-- succeeded state and the rank's place in `processed`.
local memo = {}

-- The items in order (`i`), run by run.
local i = 0
for r = 1, nruns do
  local token, run_kind, c, o, step = unpack(runs[r])
  for _ = 1, c do
    i = i + 1
    -- (ARGV[at + 3] is the item's first argument.)
    local at, id, kind = o - 2, ids[i], run_kind
    o = o + step
    local holds = kind == 'limited'
    if holds then
      kind = 'snooze'
    end
    local code = 'x'
    local old = olds[i]
    -- (A batch names each job once: the client drops repeats.)
    if old then
      local m = memo[old]
      if not m then
        local st, rank, attempts, tok, t1, _, cancel, digest = parse_state(old)
        m = { st, rank, attempts, tok, t1, cancel, digest, false }
        memo[old] = m
      end
      local st, rank, attempts, t1, cancel, digest = m[1], m[2], m[3], m[5], m[6], m[7]
      if st == 'running' and m[4] == token and kind == 'start' then
        code = 'R'
        starts[nst + 1] = id
        starts[nst + 2] = token
        nst = nst + 2
      elseif st == 'running' and m[4] == token then
        left[token] = (left[token] or 0) + 1
        ne = ne + 1
        ended[ne] = id
        if cancel ~= '1' and (kind == 'ok' or kind == 'okr') then
          code = 'S'
          if not m[8] then
            m[8] = 'succeeded|' .. rank .. '|' .. attempts .. '|' .. token .. '|' .. t1 .. '|' .. now .. '||'
            m[9] = tonumber(rank) + 1
          end
          states[ns + 1] = id
          states[ns + 2] = m[8]
          ns = ns + 2
          if kind == 'okr' then
            results[#results + 1] = id
            results[#results + 1] = ARGV[at + 3]
          end
          local r = m[9]
          processed[r] = processed[r] + 1
          nd = nd + 1
          done[nd] = id
          -- (No call in the common case: a first attempt, nothing listed.)
          if done_atts or attempts ~= '1' then
            done_atts = note_attempt(done_atts, nd, attempts)
          end
          -- It never runs again: its deduplication key has no use.
          if digest ~= '' then
            drop_digest(digest, id)
          end
        elseif cancel == '1' then
          -- A cancel was requested: cancelled, whatever the outcome.
          code = 'c'
          log_attempt(id, attempts, t1, now, 'cancelled')
          finish_record(id, 'cancelled', rank, st, attempts, token, t1, digest, now)
          emit('cancelled', id, attempts)
        elseif kind == 'retry' then
          code = 'r'
          local run_at = ms(due_at(ARGV[at + 4], now_n) or now_n)
          log_attempt(id, attempts, t1, now, ARGV[at + 3])
          ended_attempt('failed', rank)
          emit('retrying', id, attempts, ARGV[at + 3])
          redis.call('HSET', STATE, id, state_of('retrying', rank, attempts, token, run_at, '', '', digest))
          moved(rank, st, 'retrying')
          redis.call('ZADD', B .. 'scheduled', run_at, id)
          wake = true
        elseif kind == 'dead' or (kind == 'snooze' and redis.call('HINCRBY', SNOOZE, id, 1) > tonumber(ARGV[at + 5])) then
          -- Failed for good, or snoozed past the limit (its error then).
          local err = kind == 'dead' and ARGV[at + 3] or ARGV[at + 6]
          code = 'd'
          log_attempt(id, attempts, t1, now, err)
          ended_attempt('failed', rank)
          -- Named in the entry: a dead job may be forgotten (trimmed, purged)
          -- before a reader could look its name up.
          emit('dead', id, attempts, err, listening() and redis.call('HGET', JOBS, id) or nil)
          -- The dead-letter set's score: the server's clock to the microsecond.
          to_dead(id, rank, st, attempts, token, t1, digest, now, now .. '.' .. string.format('%03d', now_us))
          dead = true
        else -- 'snooze' or 'release': not an attempt, forget that it started.
          local before = ms(math.max((tonumber(attempts) or 1) - 1, 0))
          local run_at = due_at(ARGV[at + 4], now_n)
          if kind == 'snooze' then
            -- Logged as a snooze, with how long it waits.
            run_at = run_at or now_n
            log_attempt(id, attempts, t1, now, ARGV[at + 3], ms(math.max(run_at - now_n, 0)))
            if holds then
              -- An upstream's rate held the job back.
              count('throttled', 1)
            end
            local g = holds and group_of(id)
            if g then
              hold_group(g, run_at)
            end
          end
          wake = true
          if run_at and run_at > now_n then
            run_at = ms(run_at)
            code = 's'
            redis.call('HSET', STATE, id, state_of('scheduled', rank, before, token, run_at, '', '', digest))
            moved(rank, st, 'scheduled')
            redis.call('ZADD', B .. 'scheduled', run_at, id)
          else
            code = 'p'
            redis.call('HSET', STATE, id, state_of('pending', rank, before, token, '', '', '', digest))
            moved(rank, st, 'pending')
            if kind == 'snooze' then
              push_ready(id, rank, listed(id), false)
            else
              -- First in line again: it was taken before the jobs behind it.
              local r = released[tonumber(rank) + 1]
              r[#r + 1] = listed(id)
            end
          end
        end
      end
    end
    -- The queue's breaker, then the group's, before groups_ended frees the
    -- slot below.
    if code == 'S' then
      if probing then
        -- The probe succeeded: pools waiting on the breaker go on.
        wake = breaker_succeeded(id) or wake
      end
      local g = grouped and gbrk_any() and group_of(id)
      if g then
        group_breaker_succeeded(g, id)
      end
    elseif code == 'r' or code == 'd' then
      breaker_failed(id, now_n)
      local g = grouped and group_breaker and group_of(id)
      if g then
        group_breaker_failed(g, id, now_n, group_breaker)
      end
    end
    out[i] = code
  end
end

hset_many(STATE, states)
hset_many(RESULT, results)
if nst > 0 then
  -- With the marks, in the same write: `started` keeps its field ''
  -- (HASH_TABLE_KEEPER in common.lua) and stays a hash table.
  starts[nst + 1], starts[nst + 2] = '', HASH_TABLE_KEEPER
end
hset_many(STARTED, starts)
-- Start marks exist once a job outlasted its pool's batch of acks: where
-- none did, an HDEL of the missing hash would still convert every id.
if ne > 0 and redis.call('EXISTS', STARTED) == 1 then
  hdel_many(STARTED, ended)
end
emit_many('succeeded', nd, done, 0, done_atts or '1')
flow_ended(done, nd, now)
lpush_many(B .. 'done', done)
for token, k in pairs(left) do
  leave_lease(token, k)
end
-- Slots of the jobs' groups freed: pools may wait for them.
if groups_ended(ended, now_n) then
  wake = true
end
for rank = 0, 3 do
  local back = released[rank + 1]
  if back[1] == nil then
    -- Nothing handed back at this rank.
  elseif has_groups() then
    for _, entry in ipairs(back) do
      push_ready(string.sub(entry, 2), rank, entry, true)
    end
  else
    lpush_many(ready_key(rank), back)
  end
  if processed[rank + 1] > 0 then
    local r = digit(rank)
    ended_attempt('processed', r, processed[rank + 1])
    gauge(r, 'running', -processed[rank + 1])
  end
end
if dead then
  local _, _, _, dead_max = retention_of(meta, 6, nil, nil, nil, tonumber(ARGV[1]))
  trim_dead(dead_max, 1000, now)
end
flush_stats(now)
if not wake and next(left) ~= nil then
  -- Slots of a queue bounded by `max_running` freed: pools may wait for one.
  wake = meta[4] ~= false and meta[4] ~= ''
end
if wake then
  wake_fetchers()
end
return table.concat(out)
