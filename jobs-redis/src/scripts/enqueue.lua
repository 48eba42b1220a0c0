-- enqueue.lua: stores a batch of new jobs of one queue, all or nothing.
-- Defines enqueue(now, n, o, compact): the enqueue script is this file
-- followed by `return enqueue(tonumber(ARGV[1]), tonumber(ARGV[2]), 2, true)`,
-- and fire_schedule.lua calls it too.
--
-- KEYS[1]: queue prefix `<prefix>:{<queue>}:` (see common.lua).
-- ARGV[1]: now (ms).
-- ARGV[2]: n, the number of jobs; then 4 arguments per job (starting after
--   ARGV[o]):
--   ulid, record (see common.lua; its first byte is the priority rank,
--   0 = critical .. 3 = low), run_at_ms ('' = now), unique_for_ms
--   ('' = no deduplication).
-- Returns one of:
--   {'ok', id_1, .., id_n}  (compact = false) the ids in order; for a job
--                           that duplicates a live one (unique_for), the
--                           live job's id
--   {'okc', i, id, ..}      (compact = true) the same, listing only the
--                           positions (1-based) whose id is not the one sent
--   {'full', max_jobs}      the queue's max_jobs would be exceeded
--   {'priority', rank, accepted_ranks}
--                           the queue's priority_levels refuse the rank
-- Nothing is written unless the answer is 'ok' or 'okc'. The policy (meta
-- hash) is checked for the whole batch first, exactly like MemoryQueue: job
-- i of the batch is refused when pending + scheduled + i > max_jobs. A job
-- whose record exists already (the same batch sent again after a lost
-- reply) is not written twice.
--
-- Redis commands per batch, whatever its size: HMGET meta, HMGET jobs (the
-- resend check), HSET jobs (all records), one RPUSH per priority, PUBLISH.
-- A never-started pending job has no state field; delayed and unique jobs
-- add one HSET state and a ZADD (delayed) per job.
-- Publishes on the queue's wake channel when anything was written (a
-- delayed job too: an idle fetcher must reset its timer).

local function enqueue(now, n, base_arg, compact)
  local STRIDE = 4

  local meta = redis.call('HMGET', B .. 'meta', 'max_jobs', 'priority_levels')
  local max_jobs = tonumber(meta[1])
  local levels = meta[2] or ''
  if max_jobs or levels ~= '' then
    local waiting = 0
    if max_jobs then
      for r = 0, 3 do
        waiting = waiting + redis.call('LLEN', B .. 'ready:' .. r)
      end
      waiting = waiting + redis.call('ZCARD', B .. 'scheduled')
    end
    for i = 1, n do
      local rank = string.sub(ARGV[base_arg + (i - 1) * STRIDE + 2], 1, 1)
      if levels ~= '' and not string.find(levels, rank, 1, true) then
        return { 'priority', rank, levels }
      end
      if max_jobs and waiting + i > max_jobs then
        return { 'full', meta[1] }
      end
    end
  end

  local ids = {}
  for i = 1, n do
    ids[i] = ARGV[base_arg + (i - 1) * STRIDE + 1]
  end
  if n == 0 then
    return { compact and 'okc' or 'ok' }
  end
  local stored = hmget(JOBS, ids)

  local out = { compact and 'okc' or 'ok' }
  local records, states, delayed = {}, {}, {}
  local ready = { {}, {}, {}, {} } -- per rank, in batch order
  local added = {} -- ids written by this call: live for a later duplicate
  for i = 1, n do
    local o = base_arg + (i - 1) * STRIDE
    local id, rec, run_at, unique_ms = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
    local existing = nil
    if stored[i] then
      -- The same batch sent again (a retried call whose first try did
      -- reach Redis): the job is stored already.
      existing = id
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
        local st = added[other]
        if not st then
          st = load_state(other)
        end
        if st and st ~= 'succeeded' and st ~= 'dead' and st ~= 'cancelled' then
          existing = other
        end
      end
      if not existing then
        -- The key expires with the window: past it, an equal job is new.
        redis.call('SET', uk, id, 'PX', unique_ms)
      end
    end
    if existing then
      if not compact then
        out[#out + 1] = existing
      elseif existing ~= id then
        out[#out + 1] = i
        out[#out + 1] = existing
      end
    else
      local rank = string.sub(rec, 1, 1)
      records[#records + 1] = id
      records[#records + 1] = rec
      if run_at ~= '' and tonumber(run_at) > now then
        states[#states + 1] = id
        states[#states + 1] = state_of('scheduled', rank, '0', '', run_at, '', '', digest)
        delayed[#delayed + 1] = run_at
        delayed[#delayed + 1] = id
        gauge(rank, 'scheduled', 1)
        added[id] = 'scheduled'
      else
        if digest ~= '' then
          states[#states + 1] = id
          states[#states + 1] = state_of('pending', rank, '0', '', '', '', '', digest)
        end
        local r = ready[tonumber(rank) + 1]
        r[#r + 1] = digest ~= '' and listed(id) or id
        added[id] = 'pending'
      end
      if not compact then
        out[#out + 1] = id
      end
    end
  end
  hset_many(JOBS, records)
  hset_many(STATE, states)
  zadd_many(B .. 'scheduled', delayed)
  for r = 0, 3 do
    rpush_many(B .. 'ready:' .. r, ready[r + 1])
  end
  flush_stats()
  if #records > 0 then
    redis.call('PUBLISH', B .. 'wake', '1')
  end
  return out
end
