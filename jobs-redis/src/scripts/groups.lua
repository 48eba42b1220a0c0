-- groups.lua: groups of jobs (jobs_core::JobOptions::group, `#[job(group =
-- .., concurrency = ..)]`), after common.lua in every script.
--
-- A grouped job has a field in the `group` hash:
-- `<concurrency>/<rate>:<key>` (concurrency '' for no bound; rate
-- `<starts>,<window ms>`, '' for none). While pending it waits in its group's
-- list `gq:<rank>:<key>` (entries as in `ready:<rank>`), not in a ready
-- list; the hash `gpend` counts each group's pending jobs, `grun` its
-- running ones, the sorted set `gwait` scores each group no lower than its
-- pending jobs (the exact count as of its latest enqueue: fetches, which
-- lower the count, leave the score alone, so a fetch writes no sorted set;
-- groups_top.lua lists the busiest, correcting the scores it reads),
-- `gbound` holds `<concurrency>/<rate>/<rank>`: its bound and rate (its
-- latest job's, as in the `group` field) and the most urgent rank that may
-- hold jobs (a hint no higher than the truth: a fetch starts its search
-- there), and the `stats` gauge
-- `gpending:<rank>` counts the queue's grouped pending jobs per rank.
--
-- Fetches take turns (fetch.lua): `gturn` lists each group that has
-- pending jobs and a free slot once (`gon` is the set of them), and '' for
-- the queue's ungrouped jobs (in `ready:<rank>`), which joins with the
-- queue's first group and stays. A turn yields one job: the group's most
-- urgent and oldest. A group leaves the turn when it has no job left or no
-- slot; a job arriving or a slot freeing puts it back (offer_turn). So a
-- fetch never looks at idle or full groups, however many there are. The
-- hashes keep only live groups: a group with nothing pending or running
-- is deleted from them.
--
-- The queue's `meta` hash may set `group_concurrency` and `group_rate`
-- (jobs_core::QueuePolicy): set, they override every group's own bound
-- and rate (bounds_of), so an operator changes them at run time without
-- touching the jobs.
--
-- Group breakers (jobs_core::QueuePolicy::group_breaker, meta's
-- `group_breaker` as `<failures>,<within ms>,<cooldown ms>`): `gbrk` holds
-- each group whose breaker is not closed, as `open|<until ms>` (the group
-- is held in `gheld` until then; once past, its next job is a probe) or
-- `probe|<job id>|<lease ms>` (the probe runs: the group stays out of the
-- turn). `gbf:<key>` logs a group's failed attempts of the current
-- window, by time, and expires with it. A group's `gbrk` entry outlives
-- its jobs: a breaker stays open while its group is idle.
--
-- Commands per job, a group without bounds: enqueue RPUSH (and, for a
-- group not in the turn, HSET of `gbound`, SADD and RPUSH of the turn);
-- fetch LPOP; finish nothing of its own (and the cleanup of a group with
-- nothing left). Per call, whatever its size: the groups' `gbound` fields
-- (HMGET) and turn membership (SMISMEMBER), their pending counts (HMGET
-- and HSET of `gpend`, and in an enqueue ZADD of `gwait`) and running
-- counts (HMGET and HSET of `grun`; a group the finish deletes is not
-- written first), whether those offered a place in the turn are held
-- (ZMSCORE of `gheld`, when it exists), and in a fetch one LPOP and one
-- RPUSH of the turn per round.
--
-- Each of `gpend`, `grun` and `gbound` keeps a field '' that is no
-- group's, to stay a hash table (keep_group_hashes).
--
-- Layouts: a queue with groups whose `gpend` does not exist was stored by
-- an earlier build, where `gwait` held the pending counts exactly;
-- has_groups() copies them to `gpend` the first time a script meets it
-- (`gpend`, kept by its field '', exists from then on).

local GROUP = B .. 'group'
local GPEND = B .. 'gpend'
local GWAIT = B .. 'gwait'
local HAS_GROUPS = nil -- nil: not looked up yet
-- Per rank (0-3): the prefix of its groups' lists and its `gpending`
-- gauge, built by the first call of gq or gpending in a script call that
-- touches groups, from literals: Lua prints a number in a string through
-- sprintf's '%.14g', which costs more than the command it is for.
local GQ, GPENDING = nil, nil

-- The prefix of the lists of rank `r`'s groups (`r` a number).
local function gq(r)
  if not GQ then
    GQ = { [0] = B .. 'gq:0:', B .. 'gq:1:', B .. 'gq:2:', B .. 'gq:3:' }
    GPENDING = { [0] = 'gpending:0', 'gpending:1', 'gpending:2', 'gpending:3' }
  end
  return GQ[r]
end

-- The `stats` field of rank `r`'s grouped jobs pending (`r` a number).
local function gpending(r)
  if not GPENDING then
    gq(r)
  end
  return GPENDING[r]
end

-- Each group's `gbound` as read or written in this script call: {limit
-- (number or nil), rate (`<starts>,<window ms>` or ''), rank (number)}.
local BOUNDS = {}
-- Whether `gheld` exists (nil: not looked up yet).
local HAS_HELD = nil

-- Groups are served from now on: with `new`, this is the queue's first
-- grouped job, and its ungrouped jobs take turns from now on (see above).
-- `gpend`, `grun` and `gbound` get their field '' (HASH_TABLE_KEEPER in
-- common.lua): each is a hash table at any size and never deleted.
local function start_groups(new)
  if new then
    redis.call('RPUSH', B .. 'gturn', '')
  end
  for _, h in ipairs({ GPEND, B .. 'grun', B .. 'gbound' }) do
    redis.call('HSET', h, '', HASH_TABLE_KEEPER)
  end
  HAS_GROUPS = true
end

-- Whether the queue ever had a grouped job (its turn exists), in one
-- EXISTS of the turn and `gpend`. A queue whose groups were stored in
-- the earlier layout (the turn without `gpend`, see above) has its
-- pending counts copied to `gpend` first, once (a read of `gwait`, whose
-- member-and-score pairs are `gpend`'s field-and-value pairs, and a write
-- per thousand groups).
local function has_groups()
  if HAS_GROUPS == nil then
    local n = redis.call('EXISTS', B .. 'gturn', GPEND)
    HAS_GROUPS = n == 2 or (n == 1 and redis.call('EXISTS', B .. 'gturn') == 1)
    if HAS_GROUPS and n == 1 then
      start_groups(false)
      hset_many(GPEND, redis.call('ZRANGE', GWAIT, 0, -1, 'WITHSCORES'))
    end
  end
  return HAS_GROUPS
end

-- The queue's overrides, read once per script call (false: none).
local OVER_LIMIT, OVER_RATE = nil, nil

-- Sets the overrides from meta's `group_concurrency` and `group_rate`
-- (fetch.lua reads them with its own HMGET of meta).
local function set_overrides(limit, rate)
  OVER_LIMIT = tonumber(limit) or false
  OVER_RATE = (rate and rate ~= '') and rate or false
end

local function load_overrides()
  if OVER_LIMIT == nil then
    local m = redis.call('HMGET', B .. 'meta', 'group_concurrency', 'group_rate')
    set_overrides(m[1], m[2])
  end
end

-- What the groups' functions below work out once per script call, made on
-- first use (most calls touch no group), in one table since its keys never
-- meet: a `gbound` text parsed (keys holding '/', parse_bounds), a count's
-- text as a number (keys of digits only, read_many).
local SEEN = nil

-- A `gbound` value parsed (see BOUNDS; false for none or one that does not
-- parse).
-- Each value parsed once per script call: most groups share a few values
-- ('//0': no bound, no rate), and the tables are shared (BOUNDS entries are
-- replaced, never changed).
local function parse_bounds(v)
  if not v then
    return false
  end
  if not SEEN then
    SEEN = {}
  end
  local b = SEEN[v]
  if b == nil then
    local limit, rate, rank = string.match(v, '^(%d*)/([%d,]*)/(%d)$')
    b = rank and { tonumber(limit), rate, tonumber(rank) } or false
    SEEN[v] = b
  end
  return b
end

-- A `gbound` value (see above).
local function bounds_text(limit, rate, rank)
  return limit .. '/' .. rate .. '/' .. digit(rank)
end

-- Group `g`'s stored bounds (see BOUNDS; false when it has none stored),
-- read once per script call.
local function stored_bounds(g)
  local b = BOUNDS[g]
  if b == nil then
    b = parse_bounds(redis.call('HGET', B .. 'gbound', g))
    BOUNDS[g] = b
  end
  return b
end

-- The groups of `gs` (each once; '' skipped) that `cache` does not know
-- yet, and how many.
local function uncached(cache, gs)
  local want, n = {}, 0
  for i = 1, #gs do
    local g = gs[i]
    if g ~= '' and cache[g] == nil then
      n = n + 1
      want[n] = g
    end
  end
  return want, n
end

-- Reads whether the groups of `gs` ('' skipped) not in `cache` yet are
-- members of the queue's set or sorted set named `key` (`gon`, `gheld`),
-- into `cache`, in one `many` (SMISMEMBER, ZMSCORE: `no` is its reply for
-- a non-member, 0 or false) per thousand: an enqueue's batch and a
-- finish's ended jobs name many groups.
local function load_members(cache, key, many, no, gs)
  local want, n = uncached(cache, gs)
  for i = 1, n, 1000 do
    local part = redis.call(many, B .. key, unpack(want, i, math.min(i + 999, n)))
    for j = 1, #part do
      cache[want[i + j - 1]] = part[j] ~= no
    end
  end
end

-- Reads the stored bounds of the groups of `gs` ('' skipped) not read yet
-- in this call, in one HMGET: a fetch's round and an enqueue's batch name
-- many groups.
local function load_bounds(gs)
  local want, n = uncached(BOUNDS, gs)
  if n > 0 then
    local vals = hmget(B .. 'gbound', want)
    for i = 1, n do
      BOUNDS[want[i]] = parse_bounds(vals[i])
    end
  end
end

-- Group `g`'s bound on running jobs (nil: none), rate (nil: none) and
-- the rank its fetch starts at, the queue's overrides applied.
local function bounds_of(g)
  load_overrides()
  local b = stored_bounds(g)
  local limit, rate, rank = nil, nil, 0
  if b then
    limit, rank = b[1], b[3]
    if b[2] ~= '' then
      rate = b[2]
    end
  end
  if OVER_LIMIT then
    limit = OVER_LIMIT
  end
  if OVER_RATE then
    rate = OVER_RATE
  end
  return limit, rate, rank
end

-- Stores group `g`'s bounds (limit and rate as in the `group` field, ''
-- for none) and rank hint, unless they are stored already (with `batch`:
-- appended to it as HSET arguments, for the caller to write).
local function store_bounds(g, limit, rate, rank, batch)
  local b = stored_bounds(g)
  local lim = tonumber(limit)
  if b and b[1] == lim and b[2] == rate and b[3] == rank then
    return
  end
  local v = bounds_text(limit, rate, rank)
  BOUNDS[g] = parse_bounds(v)
  if batch then
    batch[#batch + 1] = g
    batch[#batch + 1] = v
  else
    redis.call('HSET', B .. 'gbound', g, v)
  end
end

-- The values of the groups of `gs` in hash `key` (`gpend`, `grun`), as
-- numbers (0 when absent), in one call per thousand. Each text is read as
-- a number once per script call (the counts of many groups are the same
-- few small numbers, and tonumber goes through strtod).
local function read_many(key, gs)
  local numbers = SEEN
  if not numbers then
    numbers = {}
    SEEN = numbers
  end
  local out = {}
  for i = 1, #gs, 1000 do
    local part = redis.call('HMGET', key, unpack(gs, i, math.min(i + 999, #gs)))
    for j = 1, #part do
      local t = part[j]
      local v = 0
      if t then
        v = numbers[t]
        if not v then
          v = tonumber(t) or 0
          numbers[t] = v
        end
      end
      out[i + j - 1] = v
    end
  end
  return out
end

-- Group `g`'s most urgent rank that may hold jobs is `rank` now (a fetch
-- found the ranks before it empty).
local function set_rank_hint(g, rank)
  local b = stored_bounds(g)
  if b and b[3] ~= rank then
    store_bounds(g, b[1] and tostring(b[1]) or '', b[2], rank)
  end
end

local GBRK = B .. 'gbrk'
-- Whether `gbrk` exists (nil: not looked up yet), and each group's entry
-- as read or written in this script call (false: closed).
local HAS_GBRK = nil
local GBRK_OF = {}

-- Whether any group's breaker is not closed.
local function gbrk_any()
  if HAS_GBRK == nil then
    HAS_GBRK = redis.call('EXISTS', GBRK) == 1
  end
  return HAS_GBRK
end

-- Group `g`'s breaker entry (see above), false when closed.
local function gbrk_state(g)
  if not gbrk_any() then
    return false
  end
  local v = GBRK_OF[g]
  if v == nil then
    v = redis.call('HGET', GBRK, g) or false
    GBRK_OF[g] = v
  end
  return v
end

local function gbrk_write(g, v)
  if v then
    redis.call('HSET', GBRK, g, v)
    HAS_GBRK = true
  else
    redis.call('HDEL', GBRK, g)
  end
  GBRK_OF[g] = v
end

-- The probe's job id of a `probe|..` entry (nil for any other).
local function probe_of(v)
  if not v then
    return nil
  end
  return string.match(v, '^probe|(.+)|%d+$')
end

-- Whether group `g`'s probe runs (no other job of it may start).
local function gbrk_probing(g)
  return probe_of(gbrk_state(g)) ~= nil
end

-- Whether each group is in `gheld`, as read or written in this script
-- call (a write there sets its entry, and HAS_HELD when it adds one).
local HELD = {}

-- Whether group `g` is held back (its rate, or an upstream's wait);
-- without `g`, whether any group is (`gheld` exists, looked up once per
-- script call).
local function is_held(g)
  if HAS_HELD == nil then
    HAS_HELD = redis.call('EXISTS', B .. 'gheld') == 1
  end
  if not HAS_HELD or g == nil then
    return HAS_HELD
  end
  local v = HELD[g]
  if v == nil then
    v = redis.call('ZSCORE', B .. 'gheld', g) ~= false
    HELD[g] = v
  end
  return v
end

-- Reads whether the groups of `gs` are held, in one call (see
-- load_members).
local function load_held(gs)
  if is_held() then
    load_members(HELD, 'gheld', 'ZMSCORE', false, gs)
  end
end

-- A group field split: key, bound, rate ('' for none).
local function group_field(v)
  -- No bound and no rate, the common value: read without a pattern.
  if string.byte(v, 1) == 47 and string.byte(v, 2) == 58 then
    return string.sub(v, 3), '', ''
  end
  local limit, rate, key = string.match(v, '^(%d*)/([%d,]*):(.*)$')
  return key, limit, rate
end

-- The group field of job `id` split (see group_field); nil for an
-- ungrouped job.
local function group_of(id)
  if not has_groups() then
    return nil
  end
  local v = redis.call('HGET', GROUP, id)
  if not v then
    return nil
  end
  return group_field(v)
end

-- When group `g` may start a job again under its rate `rate` (nil: none),
-- at `now` (ms): nil when now.
local function rate_wait(g, rate, now)
  if not rate then
    return nil
  end
  local n, per = string.match(rate, '^(%d+),(%d+)$')
  n, per = tonumber(n), tonumber(per)
  local log = B .. 'grl:' .. g
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - per)
  if redis.call('ZCARD', log) < n then
    return nil
  end
  local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + per
end

-- Records a start of group `g`'s job `id` at `now` for its rate `rate`
-- (nil: none).
local function rate_take(g, rate, id, now)
  if rate then
    local per = string.match(rate, ',(%d+)$')
    local log = B .. 'grl:' .. g
    local at = ms(now)
    redis.call('ZADD', log, at, id .. ':' .. at)
    redis.call('PEXPIRE', log, per)
  end
end

-- Whether each group is in the turn (`gon`), as read or written in this
-- script call.
local ON = {}

local function in_turn(g)
  local v = ON[g]
  if v == nil then
    v = redis.call('SISMEMBER', B .. 'gon', g) == 1
    ON[g] = v
  end
  return v
end

-- Reads whether the groups of `gs` are in the turn, in one call (see
-- load_members).
local function load_in_turn(gs)
  load_members(ON, 'gon', 'SMISMEMBER', 0, gs)
end

-- Takes the groups of `gs` out of `gon` (they left the turn).
local function leave_turn(gs)
  chunked('SREM', B .. 'gon', gs)
  for _, g in ipairs(gs) do
    ON[g] = false
  end
end

-- Puts group `g` in the turn when it has pending jobs and a free slot and
-- is not in it yet (`pending`: known to have pending jobs; with `batch`,
-- the entry is appended to it for offered() to write; `running`: its
-- running jobs when the caller knows them, ahead of `grun`). Returns
-- whether it went in, and whether it is in the turn afterwards.
local function offer_turn(g, pending, batch, running)
  if in_turn(g) then
    return false, true
  end
  if not pending and (tonumber(redis.call('HGET', GPEND, g)) or 0) <= 0 then
    return false, false
  end
  if is_held(g) or gbrk_probing(g) then
    -- Held back (release_held() offers it in time), or its breaker's probe
    -- runs (its end offers it).
    return false, false
  end
  local limit = bounds_of(g)
  if limit and (running or tonumber(redis.call('HGET', B .. 'grun', g)) or 0) >= limit then
    return false, false
  end
  ON[g] = true
  if batch then
    batch[#batch + 1] = g
  else
    redis.call('SADD', B .. 'gon', g)
    redis.call('RPUSH', B .. 'gturn', g)
  end
  return true, true
end

-- Writes the turn entries offer_turn left in `batch`, in order.
local function offered(batch)
  if #batch > 0 then
    chunked('SADD', B .. 'gon', batch)
    rpush_many(B .. 'gturn', batch)
  end
end

-- Deletes what the hashes hold of group `g` once nothing of it is pending
-- or running and it is out of the turn (`running`, `waiting`: its running
-- and pending jobs, when known; with `batch`, the group is appended to it
-- for tidied() to delete). Returns whether it was (or is to be) deleted.
local function group_tidy(g, running, waiting, batch)
  waiting = waiting or tonumber(redis.call('HGET', GPEND, g)) or 0
  running = running or tonumber(redis.call('HGET', B .. 'grun', g)) or 0
  if waiting <= 0 and running <= 0 and not in_turn(g) then
    BOUNDS[g] = false
    if batch then
      batch[#batch + 1] = g
      return true
    end
    redis.call('HDEL', GPEND, g)
    redis.call('ZREM', GWAIT, g)
    redis.call('HDEL', B .. 'grun', g)
    redis.call('HDEL', B .. 'gbound', g)
    return true
  end
  return false
end

-- Deletes the groups group_tidy left in `batch`.
local function tidied(batch)
  if #batch > 0 then
    hdel_many(GPEND, batch)
    zrem_many(GWAIT, batch)
    hdel_many(B .. 'grun', batch)
    hdel_many(B .. 'gbound', batch)
  end
end

-- Makes job entry `entry` (of rank `rank`) pending in group `g` with bound
-- `limit` and rate `rate` ('' for none): last in line, or first (`front`:
-- a job handed back was taken before those behind it). Returns whether the
-- group came into the turn.
local function group_push(g, limit, rate, rank, entry, front)
  if not has_groups() then
    start_groups(true)
  end
  rank = tonumber(rank)
  local list = gq(rank) .. g
  if front then
    redis.call('LPUSH', list, entry)
  else
    redis.call('RPUSH', list, entry)
  end
  local b = stored_bounds(g)
  store_bounds(g, limit, rate, b and math.min(b[3], rank) or rank)
  redis.call('ZADD', GWAIT, redis.call('HINCRBY', GPEND, g, 1), g)
  count(gpending(rank), 1)
  return (offer_turn(g, true))
end

-- group_push for many jobs at the end of their lines (`items`: flat, 5
-- values per job in order: group, limit, rate, rank (a number), entry).
-- Per call, whatever the number of jobs: the groups' bounds (HMGET, and
-- HSET of those that changed) and pending counts (HMGET and HSET of
-- `gpend`, ZADD of `gwait`) read and written once. A group offered a
-- place in the turn is one that had nothing pending (one that had is in
-- the turn, or out of it until a slot frees, its rate or its breaker lets
-- it start: those offer it) or whose bounds changed (a higher bound may
-- free a slot).
local function group_push_many(items)
  local n = #items
  if n == 0 then
    return
  end
  if not has_groups() then
    start_groups(true)
  end
  -- Each group once, by place (`at`: a group's place in `gs`): its jobs,
  -- its last job's place in `items` and its most urgent rank.
  local gs, ng, at, delta, last, top = {}, 0, {}, {}, {}, {}
  local per_rank = { [0] = 0, 0, 0, 0 }
  for i = 1, n, 5 do
    local g, rank = items[i], items[i + 3]
    local k = at[g]
    if not k then
      ng = ng + 1
      k = ng
      gs[k], at[g], delta[k], top[k] = g, k, 0, rank
    elseif rank < top[k] then
      top[k] = rank
    end
    delta[k] = delta[k] + 1
    last[k] = i
    per_rank[rank] = per_rank[rank] + 1
    redis.call('RPUSH', gq(rank) .. g, items[i + 4])
  end
  for r = 0, 3 do
    if per_rank[r] > 0 then
      count(gpending(r), per_rank[r])
    end
  end
  load_bounds(gs)
  local waiting = read_many(GPEND, gs)
  local items_w, items_p, offer, no, bounds = {}, {}, {}, 0, {}
  for k = 1, ng do
    local g = gs[k]
    local b, i = BOUNDS[g], last[k]
    local rank = b and math.min(b[3], top[k]) or top[k]
    local changed = not (b and b[1] == tonumber(items[i + 1]) and b[2] == items[i + 2])
    if changed or b[3] ~= rank then
      store_bounds(g, items[i + 1], items[i + 2], rank, bounds)
    end
    local v = ms(waiting[k] + delta[k])
    items_w[2 * k - 1], items_w[2 * k] = v, g
    items_p[2 * k - 1], items_p[2 * k] = g, v
    if waiting[k] <= 0 or changed then
      no = no + 1
      offer[no] = g
    end
  end
  hset_many(GPEND, items_p)
  zadd_many(GWAIT, items_w)
  hset_many(B .. 'gbound', bounds)
  load_in_turn(offer)
  load_held(offer)
  local entered = {}
  for j = 1, no do
    offer_turn(offer[j], true, entered)
  end
  offered(entered)
end

-- Makes job `id` pending (listed as `entry`, of rank `rank`): in its
-- group's list when it has a group, else in `ready:<rank>`; `front` as
-- for group_push.
local function push_ready(id, rank, entry, front)
  local g, limit, rate = group_of(id)
  if g then
    group_push(g, limit, rate, rank, entry, front)
  elseif front then
    redis.call('LPUSH', ready_key(rank), entry)
  else
    redis.call('RPUSH', ready_key(rank), entry)
  end
end

-- Takes pending job `id` (of rank `rank`) out of its list: its group's or
-- `ready:<rank>`. Linear in the list's length (cancel, a keyed replace).
local function remove_ready(id, rank)
  local g = group_of(id)
  local list = g and (gq(tonumber(rank)) .. g) or ready_key(rank)
  local n = redis.call('LREM', list, 1, listed(id))
  if n == 0 then
    n = redis.call('LREM', list, 1, id)
  end
  if g and n > 0 then
    -- A group left with nothing pending stays in the turn until a fetch
    -- reaches it there and drops it.
    redis.call('HINCRBY', GPEND, g, -1)
    count(gpending(tonumber(rank)), -1)
    group_tidy(g)
  end
end

-- When job `id` was group `g`'s breaker probe and its outcome neither
-- closed nor reopened the breaker (those are applied first), the group's
-- next job is a probe.
local function probe_stopped(g, id, now)
  if probe_of(gbrk_state(g)) == id then
    gbrk_write(g, 'open|' .. ms(now))
  end
end

-- Running job `id` of group `g` stopped running at `now` (ms: ended,
-- handed back, reclaimed): its slot is free (and see probe_stopped).
-- Returns whether the group came back into the turn (pools waiting for a
-- slot can take its jobs).
local function group_ended(g, id, now)
  probe_stopped(g, id, now)
  local running = redis.call('HINCRBY', B .. 'grun', g, -1)
  local back, in_turn = offer_turn(g, false)
  if running <= 0 and not in_turn then
    group_tidy(g, running)
  end
  return back
end

-- For each job of `ids` that has a group, group_ended(its group) at
-- `now`; returns whether any group came back into the turn.
local function groups_ended(ids, now)
  if not has_groups() or #ids == 0 then
    return false
  end
  local fields = hmget(GROUP, ids)
  -- Each group once, by place (`at`: a group's place in `gs`), with the
  -- jobs of it that ended.
  local gs, ng, at, ended = {}, 0, {}, {}
  local brk = gbrk_any()
  for i = 1, #ids do
    local f = fields[i]
    if f then
      local g = group_field(f)
      local k = at[g]
      if not k then
        ng = ng + 1
        k = ng
        gs[k], at[g], ended[k] = g, k, 0
      end
      ended[k] = ended[k] + 1
      if brk then
        probe_stopped(g, ids[i], now)
      end
    end
  end
  if ng == 0 then
    return false
  end
  local running = read_many(B .. 'grun', gs)
  for k = 1, ng do
    running[k] = running[k] - ended[k]
  end
  -- The groups out of the turn: their pending counts read in one call,
  -- and the bounds and holds of those with jobs pending (offered a place).
  load_in_turn(gs)
  local out, run_out, nout = {}, {}, 0
  for k = 1, ng do
    if not ON[gs[k]] then
      nout = nout + 1
      out[nout], run_out[nout] = gs[k], running[k]
    end
  end
  -- The groups deleted below (tidied() deletes their running counts with
  -- the rest), by name.
  local back, entered, gone, dropped = false, {}, {}, {}
  if nout > 0 then
    local waiting = read_many(GPEND, out)
    local offer, no = {}, 0
    for i = 1, nout do
      if waiting[i] > 0 then
        no = no + 1
        offer[no] = out[i]
      end
    end
    load_bounds(offer)
    load_held(offer)
    for i = 1, nout do
      local g = out[i]
      local went, in_turn = false, false
      if waiting[i] > 0 then
        went, in_turn = offer_turn(g, true, entered, run_out[i])
      end
      back = back or went
      if run_out[i] <= 0 and not in_turn and group_tidy(g, run_out[i], waiting[i], gone) then
        dropped[g] = true
      end
    end
  end
  -- The running counts of the groups that stay.
  local items, ni = {}, 0
  for k = 1, ng do
    local g = gs[k]
    if not dropped[g] then
      items[ni + 1], items[ni + 2] = g, ms(running[k])
      ni = ni + 2
    end
  end
  hset_many(B .. 'grun', items)
  offered(entered)
  tidied(gone)
  return back
end

-- Holds group `g` back until `till` (ms; an upstream's "retry after"):
-- out of the turn, and no job of it starts before then (a later hold
-- wins). The LREM is linear in the turn's length: a rare event.
local function hold_group(g, till)
  leave_turn({ g })
  redis.call('LREM', B .. 'gturn', 0, g)
  redis.call('ZADD', B .. 'gheld', 'GT', till, g)
  HELD[g], HAS_HELD = true, true
end

-- Offers each group with running jobs a place in the turn (the bounds
-- changed): at most `limit` of them, and a group at its bound has a
-- running job, so this reads no idle group.
local function offer_running(limit)
  local cursor, seen = '0', 0
  repeat
    local page = redis.call('HSCAN', B .. 'grun', cursor, 'COUNT', 100)
    cursor = page[1]
    for i = 1, #page[2], 2 do
      local g = page[2][i]
      if g ~= '' then
        offer_turn(g, false)
        seen = seen + 1
      end
    end
  until cursor == '0' or seen >= limit
end

-- Whether any job of the queue is pending (grouped or not).
local function any_pending()
  for r0 = 0, 3 do
    if redis.call('LLEN', ready_key(r0)) > 0 then
      return true
    end
  end
  if not has_groups() then
    return false
  end
  -- The gauges of grouped pending jobs, with this call's changes.
  local stored = redis.call('HMGET', B .. 'stats', gpending(0), gpending(1), gpending(2), gpending(3))
  for r0 = 0, 3 do
    if (tonumber(stored[r0 + 1]) or 0) + (STATS[gpending(r0)] or 0) > 0 then
      return true
    end
  end
  return false
end

-- Puts the groups whose rate lets them start again by `now` back in the
-- turn, at most `limit` of them.
local function release_held(now, limit)
  local due = redis.call('ZRANGEBYSCORE', B .. 'gheld', '-inf', ms(now), 'LIMIT', '0', ms(limit))
  for _, g in ipairs(due) do
    redis.call('ZREM', B .. 'gheld', g)
    HELD[g] = false
    offer_turn(g, false)
  end
end

-- Opens group `g`'s breaker until `till` (ms): held out of the turn until
-- then, its failures forgotten.
local function group_breaker_open(g, till)
  gbrk_write(g, 'open|' .. ms(till))
  redis.call('DEL', B .. 'gbf:' .. g)
  redis.call('HINCRBY', B .. 'meta', 'gbopened', 1)
  hold_group(g, till)
end

-- Closes group `g`'s breaker by hand: its jobs start at once (a hold for
-- its rate or an upstream's wait ends with it).
local function group_breaker_close(g)
  gbrk_write(g, false)
  redis.call('DEL', B .. 'gbf:' .. g)
  redis.call('ZREM', B .. 'gheld', g)
  HELD[g] = false
  offer_turn(g, false)
end

-- The queue's group breaker from meta's `group_breaker`: {failures,
-- within ms, cooldown ms}, or nil.
local function group_breaker_config(v)
  local n, within, cool = string.match(v or '', '^(%d+),(%d+),(%d+)$')
  if n then
    return { tonumber(n), tonumber(within), tonumber(cool) }
  end
  return nil
end

-- An attempt of job `id` of group `g` failed at `now` (ms), under the
-- breaker `cfg` (group_breaker_config): counted while the breaker is
-- closed (it opens at its bound); a failed probe reopens it.
local function group_breaker_failed(g, id, now, cfg)
  local v = gbrk_state(g)
  if v then
    if probe_of(v) == id then
      group_breaker_open(g, now + cfg[3])
    end
    return
  end
  local log = B .. 'gbf:' .. g
  redis.call('ZADD', log, now, id .. ':' .. now)
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - cfg[2])
  redis.call('PEXPIRE', log, cfg[2])
  if redis.call('ZCARD', log) >= cfg[1] then
    group_breaker_open(g, now + cfg[3])
  end
end

-- Job `id` of group `g` succeeded: when it was the probe, the breaker
-- closes (group_ended then offers the group).
local function group_breaker_succeeded(g, id)
  if probe_of(gbrk_state(g)) == id then
    gbrk_write(g, false)
  end
end
