-- enqueue.lua: stores a batch of new jobs of one queue, all or nothing.
-- Defines enqueue(now, n, o, compact, one_name, layout), `now` being the
-- server's clock (ms): the enqueue script is this file followed by
-- `return enqueue(server_clock(), tonumber(ARGV[1]), 3, true, ARGV[2],
-- ARGV[3])`, and fire_schedule.lua calls it too.
--
-- KEYS[1]: queue prefix `<prefix>:{<queue>}:` (see common.lua).
-- ARGV[1]: n, the number of jobs; ARGV[2] (the enqueue script): one_name,
--   the job name of every job of the batch when they share one, else '':
--   their `enqueued` events are then recorded without looking at each
--   record for its name; ARGV[3] (the enqueue script): the batch's
--   layout: 'p' when no job of it sets an option (`plain`: each sends its
--   ulid and its record only), followed by their rank (0-3) when every
--   one has the same (their records' first byte); else ''. Then, per job
--   (starting after ARGV[o]): its ulid, its record (see common.lua; its
--   first byte is the priority rank, 0 = critical .. 3 = low), unless
--   `plain` its options' letters ('' for none), then one argument per
--   letter, in the letters' order:
--   'r' run_at ('+<ms>' = that long after the server's now, '<ms>' = at
--       that time; see due_at in common.lua; without it, now)
--   'u' unique_for_ms (without it, no deduplication)
--   'x' expires (like run_at; stored in the `expires` hash; without it,
--       the job never expires)
--   'c' caller id: 'e' or 'f' then the id: when a stored job has the id,
--       return it or fail
--   'k' key: 'k' or 'r' then the key field `<name length>:<name><key>`:
--       when a job with it waits, keep it or replace it
--   'g' group: its `group` field `<concurrency>/<rate>:<key>` (see
--       groups.lua)
--   'f' flow: `<flow id> <member>`: the job is a workflow step or batch
--       job, whose end is recorded for its flow (flow_ended in common.lua)
--   (Each argument a script is sent costs it a Lua string: a job sends
--   no empty ones, and in a plain batch not even its letters.)
-- Returns one of:
--   {'ok', id_1, .., id_n}  (compact = false) the ids in order; for a job
--                           that duplicates a live one (unique_for), the
--                           live job's id
--   {'okc', i, id, ..}      (compact = true) the same, listing only the
--                           positions (1-based) whose id is not the one sent
--   {'full', max_jobs}      the queue's max_jobs would be exceeded
--   {'priority', rank, accepted_ranks}
--                           the queue's priority_levels refuse the rank
--   {'exists', i, ulid}     job i asked to fail when its caller id is
--                           held, and stored job `ulid` holds it
-- Nothing is written unless the answer is 'ok' or 'okc'. The policy (meta
-- hash) is checked for the whole batch first, exactly like MemoryQueue: job
-- i of the batch is refused when pending + scheduled + i > max_jobs. A job
-- whose record exists already (the same batch sent again after a lost
-- reply) is not written twice.
--
-- Redis commands per batch, whatever its size: HMGET meta, HMGET jobs of
-- the first job (the resend check: see below), HSET jobs (all records),
-- one RPUSH per priority, ZRANGEBYSCORE of `parked` (and, for a parked
-- fetcher, its fetch: see hand_off in fetch.lua), PUBLISH.
-- A never-started pending job has no state field; delayed and unique jobs
-- add one HSET state and a ZADD (delayed) per job; jobs with an expiry,
-- one HSET expires per batch.
-- Hands the jobs that may start now to a parked fetcher (hand_off in
-- fetch.lua; a lone job that sets no option, when a fetch would take it
-- first, is leased without a fetch and never listed), and publishes on
-- the queue's wake channel when anything was written that no parked
-- fetcher took (a delayed job too: an idle fetcher must reset its timer).
--
-- A job whose caller id is held (by a stored job: the `ids` index names a
-- ulid that has a record) is not written: the holder's id is returned. A
-- job whose key is held by a waiting job is not written either: with 'k'
-- the waiting job stays as it is, with 'r' it is replaced (replace() below)
-- and its id returned. A key or id held by a job that no longer qualifies
-- is taken over by the new job.

-- The `<retries>|<timeout>|` part of a record and where what follows
-- its enqueue delta starts.
local function record_parts(rec)
  return string.match(rec, '^%d|(%d*|%d*)|(%-?%d*)|()')
end

-- Replaces waiting job `id` (its state fields given) by record `rec` due at
-- `run_at` and expiring at `expires` (arguments as for a new job): the
-- payload, headers, priority, retries and timeout of `rec`, its due time
-- and expiry; the job's id and enqueue time stay (the old record's enqueue
-- delta, which counts from the ulid). A pending job whose priority stays
-- keeps its place in line; otherwise it moves, which for a pending job is
-- an LREM, linear in its ready list.
local function replace(id, st, rank, token, digest, rec, run_at, expires, group, now)
  local old = redis.call('HGET', JOBS, id)
  local _, delta = record_parts(old)
  local nrank = string.sub(rec, 1, 1)
  local head, _, rest = record_parts(rec)
  local new = nrank .. '|' .. head .. '|' .. delta .. '|' .. string.sub(rec, rest)
  redis.call('HSET', JOBS, id, new)
  local due = due_at(run_at, now)
  if due and due <= now then
    due = nil
  end
  local old_group = has_groups() and redis.call('HGET', GROUP, id) or false
  local moves = old_group ~= (group ~= '' and group or false)
  if st ~= 'pending' or due or nrank ~= rank or moves then
    if st == 'scheduled' then
      redis.call('ZREM', B .. 'scheduled', id)
    else
      remove_ready(id, rank)
    end
    if group ~= '' then
      redis.call('HSET', GROUP, id, group)
    else
      redis.call('HDEL', GROUP, id)
    end
    if due then
      redis.call('ZADD', B .. 'scheduled', ms(due), id)
      redis.call('HSET', STATE, id, state_of('scheduled', nrank, '0', token, ms(due), '', '', digest))
    else
      redis.call('HSET', STATE, id, state_of('pending', nrank, '0', token, '', '', '', digest))
      push_ready(id, nrank, listed(id), false)
    end
    gauge(rank, st, -1)
    gauge(nrank, due and 'scheduled' or 'pending', 1)
  end
  if expires ~= '' then
    redis.call('HSET', EXPIRES, id, ms(due_at(expires, now)))
  else
    redis.call('HDEL', EXPIRES, id)
  end
  emit('enqueued', id, '0', 'replaced', new)
end

-- The options of the job whose arguments start after ARGV[o] and whose
-- letters are `letters` (see above; checked by enqueue): its run_at,
-- unique_for_ms, expires, caller id, key, group and flow, '' for those it
-- does not set.
local function job_options(o, letters)
  if letters == '' then
    return '', '', '', '', '', '', ''
  elseif letters == 'g' then
    return '', '', '', '', '', ARGV[o + 4], ''
  end
  local r, u, x, c, k, g, f = '', '', '', '', '', '', ''
  for j = 1, #letters do
    local b, v = string.byte(letters, j), ARGV[o + 3 + j]
    if b == 114 then
      r = v
    elseif b == 117 then
      u = v
    elseif b == 120 then
      x = v
    elseif b == 99 then
      c = v
    elseif b == 107 then
      k = v
    elseif b == 103 then
      g = v
    else
      f = v
    end
  end
  return r, u, x, c, k, g, f
end

local function enqueue(now, n, base_arg, compact, one_name, layout)
  -- Whether the batch is plain, and the rank all its jobs share when it
  -- says so (see ARGV[3] above).
  local plain, one_rank = false, nil
  if layout and layout ~= '' then
    local r = string.match(layout, '^p([0-3]?)$')
    if not r then
      return redis.error_reply('enqueue.lua: `' .. layout .. '` is no layout of a batch')
    end
    plain, one_rank = true, tonumber(r)
  end
  -- Where each job's arguments start, each job's id and the batch's ids
  -- and records as HSET takes them (`batch`; ARGV itself when `plain`),
  -- checked before anything is written; by place, the caller ids (below:
  -- the stored jobs holding them, read once for all), nil for none.
  local at, ids, batch, cid_of_job, held_by = {}, {}, {}, {}, {}
  -- The caller ids in batch order, each one's job's place, and whether
  -- its job fails when the id is held (mode 'f').
  local cids, at_cid, fails, nc = {}, {}, {}, 0
  if plain then
    -- Each job sends its ulid and its record, as HSET takes them: the
    -- records are written from ARGV itself (`batch` stays empty).
    local o = base_arg
    for i = 1, n do
      at[i] = o
      ids[i] = ARGV[o + 1]
      o = o + 2
    end
    if n > 0 and not ARGV[o] then
      return redis.error_reply('enqueue.lua: ' .. n .. ' jobs announced, ' .. math.floor((#ARGV - base_arg) / 2)
        .. ' sent')
    end
  else
    local o = base_arg
    for i = 1, n do
      at[i] = o
      local letters = ARGV[o + 3]
      if not letters then
        return redis.error_reply('enqueue.lua: ' .. n .. ' jobs announced, ' .. (i - 1) .. ' sent')
      end
      local id = ARGV[o + 1]
      ids[i], batch[2 * i - 1], batch[2 * i] = id, id, ARGV[o + 2]
      local k = #letters
      if k > 0 then
        -- ('g' alone, a grouped job's, needs no search.)
        if letters ~= 'g' and string.find(letters, '[^ruxckgf]') or not ARGV[o + 3 + k] then
          return redis.error_reply('enqueue.lua: job ' .. i .. ' has options `' .. letters .. '` that do not parse')
        end
        local c = letters ~= 'g' and string.find(letters, 'c', 1, true)
        local arg = c and ARGV[o + 3 + c]
        if arg and arg ~= '' then
          nc = nc + 1
          cids[nc], at_cid[nc], fails[nc] = string.sub(arg, 2), i, string.byte(arg) == 102
          cid_of_job[i] = cids[nc]
        end
      end
      o = o + 3 + k
    end
  end

  -- With the limits a lone job's hand-off reads (lone_is_next in
  -- fetch.lua): one read of the settings for both.
  local meta = redis.call('HMGET', B .. 'meta', 'max_jobs', 'priority_levels', 'paused', 'max_running', 'rate',
    'bstate')
  local max_jobs = tonumber(meta[1])
  local levels = meta[2] or ''
  if max_jobs or levels ~= '' then
    local waiting = 0
    if max_jobs then
      for r = 0, 3 do
        waiting = waiting + redis.call('LLEN', ready_key(r))
      end
      for _, c in ipairs(redis.call('HMGET', B .. 'stats', 'gpending:0', 'gpending:1', 'gpending:2', 'gpending:3')) do
        waiting = waiting + (tonumber(c) or 0)
      end
      waiting = waiting + redis.call('ZCARD', B .. 'scheduled')
    end
    for i = 1, n do
      local rank = string.sub(ARGV[at[i] + 2], 1, 1)
      if levels ~= '' and not string.find(levels, rank, 1, true) then
        return { 'priority', rank, levels }
      end
      if max_jobs and waiting + i > max_jobs then
        return { 'full', meta[1] }
      end
    end
  end

  if nc > 0 then
    local holders = hmget(B .. 'ids', cids)
    for j = 1, nc do
      local i, other = at_cid[j], holders[j]
      -- (An index entry may outlive its job.)
      if other and redis.call('HEXISTS', JOBS, other) == 1 then
        held_by[i] = other
        if fails[j] and other ~= ids[i] then
          return { 'exists', i, other }
        end
      end
    end
  end
  if n == 0 then
    return { compact and 'okc' or 'ok' }
  end
  -- Which jobs are stored already (a batch sent again after a lost reply)?
  -- One job is written only if it is not (one HSETNX). Of a batch, when
  -- the first one is, every one is looked up. Otherwise the records are
  -- written at once and HSET's count of new fields tells whether all were
  -- new (the common case: no read per job); when not, the batch mixes new
  -- jobs with stored ones, and the stored ones are found by their state
  -- field or their place in a ready list (a slow path for an odd caller).
  -- (`all_new`: every job of the batch was new, and is written.)
  local stored, written, all_new = nil, false, false
  if n == 1 then
    written = redis.call('HSETNX', JOBS, ids[1], ARGV[at[1] + 2]) == 1
    stored, all_new = { not written }, written
  elseif redis.call('HMGET', JOBS, ids[1])[1] then
    stored = hmget(JOBS, ids)
  else
    local new = plain and hset_many(JOBS, ARGV, 2 * n, base_arg) or hset_many(JOBS, batch)
    written, all_new = true, new == n
    stored = {}
    if new < n then
      local states = hmget(STATE, ids)
      local listed_ids = nil
      for i = 1, n do
        stored[i] = states[i] ~= false
        if not stored[i] then
          -- A stored job without a state field is pending in a ready list.
          if not listed_ids then
            listed_ids = {}
            for r = 0, 3 do
              for _, entry in ipairs(redis.call('LRANGE', ready_key(r), '0', '-1')) do
                listed_ids[entry] = true
              end
            end
          end
          stored[i] = listed_ids[ids[i]] == true
        end
      end
    end
  end

  local out = { compact and 'okc' or 'ok' }
  -- Tables filled with explicit counters (`#t` is a search in Lua 5.1).
  -- `records`: the new jobs' records, kept only when not written above;
  -- `nw`: the new jobs stored by this call.
  local records, nr, nw, states, delayed, expiring = {}, 0, 0, {}, {}, {}
  local ready = { {}, {}, {}, {} } -- per rank, in batch order
  local nready = { 0, 0, 0, 0 }
  local added = nil -- ids written by this call (when some are unique)
  -- The caller id and key index entries of the new jobs, both ways
  -- (value -> job, job -> value), written once per call.
  local by_cid, cid_of, by_key, key_of = {}, {}, {}, {}
  local grouped, gready = {}, {} -- group fields of the new jobs; their pending ones
  local flows = {} -- flow fields of the new jobs
  local replaced = false
  -- The new jobs and their records, for their `enqueued` events (recorded
  -- at once: emit_many in common.lua; before a replacement's own event,
  -- which may concern one of them).
  local ev_ids, ev_recs, nev_new = {}, {}, 0
  -- With one name for the batch, the new jobs are not listed as they come:
  -- when every job is new (the common batch) their events are recorded
  -- from `ids` at the end; else the few that are not new are noted
  -- (`not_new`) and the new ones listed from them when needed.
  if one_name == '' then
    one_name = nil
  end
  local not_new, listed_upto = {}, 0
  -- Whether the new jobs are listed as they come (their names differ, and
  -- someone listens).
  local list_new = not one_name and listening()
  -- Records the `enqueued` events of the new jobs up to job `upto` not
  -- recorded yet.
  local function record_new(upto)
    if not one_name then
      emit_many('enqueued', nev_new, ev_ids, 0, '0', ev_recs, 0, 1)
    elseif listed_upto == 0 and upto == n and nev_new == n then
      emit_many('enqueued', n, ids, 0, '0', nil, 0, 0, one_name)
    else
      local list, c = {}, 0
      for j = listed_upto + 1, upto do
        if not not_new[j] then
          c = c + 1
          list[c] = ids[j]
        end
      end
      emit_many('enqueued', c, list, 0, '0', nil, 0, 0, one_name)
    end
    ev_ids, ev_recs, nev_new, listed_upto = {}, {}, 0, upto
  end
  -- A job of record `rec` pending now, as `entry`: last in its ready list,
  -- or in its group's (`group`, its group field; '' for none) once the
  -- records are written.
  local function pending_now(entry, rec, group)
    if group == '' then
      local k = string.byte(rec) - 47
      local c = nready[k] + 1
      nready[k] = c
      ready[k][c] = entry
    else
      local g, limit, rate = group_field(group)
      local k = #gready
      gready[k + 1], gready[k + 2], gready[k + 3], gready[k + 4], gready[k + 5] =
        g, limit, rate, string.byte(rec) - 48, entry
    end
  end
  if plain and all_new and compact and not list_new then
    -- Every job new and without options (the common batch): each is
    -- pending now, and nothing else is asked of it one by one.
    if one_rank then
      -- One rank for all: its ready list gets the ids as they came.
      ready[one_rank + 1], nready[one_rank + 1] = ids, n
    else
      for i = 1, n do
        pending_now(ids[i], ARGV[at[i] + 2], '')
      end
    end
    nw, nev_new = n, n
  else
    for i = 1, n do
      local o = at[i]
      local id, rec, letters = ids[i], ARGV[o + 2], plain and '' or ARGV[o + 3]
      local group = letters == 'g' and ARGV[o + 4] or ''
      if (letters == '' or group ~= '') and not stored[i] then
        -- No option but perhaps a group (most jobs): new, and pending now; the
        -- general path below without its checks.
        nw, nev_new = nw + 1, nev_new + 1
        if list_new then
          ev_ids[nev_new], ev_recs[nev_new] = id, rec
        end
        if not written then
          records[nr + 1], records[nr + 2] = id, rec
          nr = nr + 2
        end
        if group ~= '' then
          grouped[#grouped + 1] = id
          grouped[#grouped + 1] = group
        end
        pending_now(id, rec, group)
        if not compact then
          out[#out + 1] = id
        end
      else
        local run_at, unique_ms, expires, cid, key, group, flow = job_options(o, letters)
        local existing = nil
        if stored[i] then
          -- The same batch sent again (a retried call whose first try did
          -- reach Redis): the job is stored already.
          existing = id
        end
        if not existing and cid ~= '' then
          existing = held_by[i]
        end
        if not existing and key ~= '' then
          local other = redis.call('HGET', B .. 'keys', string.sub(key, 2))
          if other then
            local st, rank, attempts, token, _, _, _, dg = load_state(other)
            if (st == 'pending' or st == 'scheduled') and (attempts == '' or attempts == '0') then
              if string.byte(key, 1) == 114 then -- 'r'
                record_new(i - 1)
                replace(other, st, rank, token, dg, rec, run_at, expires, group, now)
                replaced = true
              end
              existing = other
            end
          end
        end
        local digest = ''
        if not existing and unique_ms ~= '' then
          local name_len, headers_len, start = string.match(rec, '^%d|%d*|%d*|%-?%d*|(%d+)|(%d+)|()')
          name_len, headers_len = tonumber(name_len), tonumber(headers_len)
          local name = string.sub(rec, start, start + name_len - 1)
          local payload = string.sub(rec, start + name_len + headers_len)
          digest = redis.sha1hex(#name .. ':' .. name .. payload)
          local uk = B .. 'uniq:' .. digest
          local other = redis.call('GET', uk)
          if other then
            local st = added and added[other]
            if not st then
              st = load_state(other)
            end
            if st and not is_done(st) and st ~= 'dead' then
              existing = other
            end
          end
          if not existing then
            -- The key expires with the window: past it, an equal job is new.
            redis.call('SET', uk, id, 'PX', unique_ms)
          end
        end
        if existing then
          not_new[i] = true
          if written and not stored[i] then
            -- A duplicate of a live unique job: written above, but not stored.
            redis.call('HDEL', JOBS, id)
          end
          if not compact then
            out[#out + 1] = existing
          elseif existing ~= id then
            out[#out + 1] = i
            out[#out + 1] = existing
          end
        else
          local rank = string.sub(rec, 1, 1)
          nw, nev_new = nw + 1, nev_new + 1
          if list_new then
            ev_ids[nev_new], ev_recs[nev_new] = id, rec
          end
          if expires ~= '' then
            expiring[#expiring + 1] = id
            expiring[#expiring + 1] = ms(due_at(expires, now))
          end
          if not written then
            records[nr + 1], records[nr + 2] = id, rec
            nr = nr + 2
          end
          if cid ~= '' then
            local v, c = cid_of_job[i], #by_cid
            by_cid[c + 1], by_cid[c + 2], cid_of[c + 1], cid_of[c + 2] = v, id, id, v
          end
          if key ~= '' then
            local v, c = string.sub(key, 2), #by_key
            by_key[c + 1], by_key[c + 2], key_of[c + 1], key_of[c + 2] = v, id, id, v
          end
          if group ~= '' then
            grouped[#grouped + 1] = id
            grouped[#grouped + 1] = group
          end
          if flow ~= '' then
            flows[#flows + 1] = id
            flows[#flows + 1] = flow
          end
          local due = due_at(run_at, now)
          if due and due > now then
            due = ms(due)
            states[#states + 1] = id
            states[#states + 1] = state_of('scheduled', rank, '0', '', due, '', '', digest)
            delayed[#delayed + 1] = due
            delayed[#delayed + 1] = id
            gauge(rank, 'scheduled', 1)
            if digest ~= '' then
              added = added or {}
              added[id] = 'scheduled'
            end
          else
            if digest ~= '' then
              states[#states + 1] = id
              states[#states + 1] = state_of('pending', rank, '0', '', '', '', '', digest)
            end
            local entry = id
            if digest ~= '' then
              entry = listed(id)
              added = added or {}
              added[id] = 'pending'
            end
            pending_now(entry, rec, group)
          end
          if not compact then
            out[#out + 1] = id
          end
        end
      end
    end
  end
  if not written then
    hset_many(JOBS, records)
  end
  record_new(n)
  hset_many(STATE, states)
  hset_many(EXPIRES, expiring)
  zadd_many(B .. 'scheduled', delayed)
  -- One new job that may start now and sets no option: hand_off (fetch.lua)
  -- may lease it to a parked fetcher at once, and lists it only if none
  -- takes it.
  local nstart = nready[1] + nready[2] + nready[3] + nready[4] + #gready
  local lone = n == 1 and nstart == 1 and nw == 1 and #gready == 0 and #delayed == 0 and not replaced
    and (plain or ARGV[at[1] + 3] == '')
  for r = 0, 3 do
    if ready[r + 1][1] and not lone then
      rpush_many(ready_key(r), ready[r + 1])
    end
  end
  hset_many(GROUP, grouped)
  hset_many(B .. 'flow', flows)
  group_push_many(gready)
  hset_many(B .. 'ids', by_cid)
  hset_many(CID, cid_of)
  hset_many(B .. 'keys', by_key)
  hset_many(CKEY, key_of)
  flush_stats()
  -- Jobs that may start now go to a parked fetcher in this step
  -- (hand_off in fetch.lua); the wake-up is for the jobs it left, and for
  -- a delayed job (an idle fetcher resets its timer).
  if (nw > 0 or replaced)
    and not ((nstart > 0 or replaced) and hand_off(now, lone and ids[1], lone and ARGV[at[1] + 2], meta) and #delayed == 0) then
    wake_fetchers()
  end
  return out
end
