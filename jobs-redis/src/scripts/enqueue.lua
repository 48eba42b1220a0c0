-- enqueue.lua: stores a batch of new jobs of one queue, all or nothing.
-- Defines enqueue(now, n, o): the enqueue script is this file followed by
-- `return enqueue(tonumber(ARGV[1]), tonumber(ARGV[2]), 2)`, and
-- fire_schedule.lua calls it too.
--
-- KEYS[1]: queue prefix `<prefix>:{<queue>}:` (see common.lua).
-- ARGV[1]: now (ms).
-- ARGV[2]: n, the number of jobs; then 10 arguments per job (starting after
--   ARGV[o]):
--   ulid, name, payload, priority rank (0 = critical .. 3 = low),
--   max_retries ('' = the pool's default), timeout_ms ('' = none),
--   run_at_ms ('' = now), unique_for_ms ('' = no deduplication),
--   enqueued_ms, headers (JSON object, '' = none).
-- Returns one of:
--   {'ok', id_1, .., id_n}  the ids in order; for a job that duplicates a
--                           live one (unique_for), the live job's id
--   {'full', max_jobs}      the queue's max_jobs would be exceeded
--   {'priority', rank, accepted_ranks}
--                           the queue's priority_levels refuse the rank
-- Nothing is written unless the answer is 'ok'. The policy (meta hash) is
-- checked for the whole batch first, exactly like MemoryQueue: job i of the
-- batch is refused when pending + scheduled + i > max_jobs. A job whose
-- hash exists already (the same batch sent again after a lost reply) is not
-- written twice.
-- Publishes on the queue's wake channel when anything was written (a
-- delayed job too: an idle fetcher must reset its timer).

local function enqueue(now, n, base_arg)
  local STRIDE = 10

  local meta = redis.call('HMGET', B .. 'meta', 'max_jobs', 'priority_levels')
  local max_jobs = tonumber(meta[1])
  local levels = meta[2] or ''
  local waiting = 0
  if max_jobs then
    for r = 0, 3 do
      waiting = waiting + redis.call('LLEN', B .. 'ready:' .. r)
    end
    waiting = waiting + redis.call('ZCARD', B .. 'scheduled')
  end
  for i = 1, n do
    local rank = ARGV[base_arg + (i - 1) * STRIDE + 4]
    if levels ~= '' and not string.find(levels, rank, 1, true) then
      return { 'priority', rank, levels }
    end
    if max_jobs and waiting + i > max_jobs then
      return { 'full', meta[1] }
    end
  end

  local out = { 'ok' }
  local wrote = false
  local ready = { {}, {}, {}, {} } -- per rank, in batch order
  for i = 1, n do
    local o = base_arg + (i - 1) * STRIDE
    local id, name, payload, rank = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
    local max_retries, timeout, run_at, unique_ms, enqueued = ARGV[o + 5], ARGV[o + 6], ARGV[o + 7], ARGV[o + 8], ARGV[o + 9]
    local headers = ARGV[o + 10]
    local jk = jkey(id)
    local existing = nil
    if redis.call('EXISTS', jk) == 1 then
      -- The same batch sent again (a retried call whose first try did
      -- reach Redis): the job is stored already.
      existing = id
    end
    local digest = nil
    if not existing and unique_ms ~= '' then
      digest = redis.sha1hex(#name .. ':' .. name .. payload)
      local uk = B .. 'uniq:' .. digest
      local other = redis.call('GET', uk)
      if other then
        local st = redis.call('HGET', jkey(other), 'status')
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
      out[#out + 1] = existing
    else
      local status = 'pending'
      if run_at ~= '' and tonumber(run_at) > now then
        status = 'scheduled'
      end
      local fields = { 'name', name, 'payload', payload, 'priority', rank, 'enqueued_ms', enqueued,
        'status', status, 'attempts', '0', 'token', '0', 'log', '[]' }
      if max_retries ~= '' then
        fields[#fields + 1] = 'max_retries'
        fields[#fields + 1] = max_retries
      end
      if timeout ~= '' then
        fields[#fields + 1] = 'timeout_ms'
        fields[#fields + 1] = timeout
      end
      if headers ~= '' then
        fields[#fields + 1] = 'headers'
        fields[#fields + 1] = headers
      end
      if digest then
        fields[#fields + 1] = 'unique'
        fields[#fields + 1] = digest
      end
      if status == 'scheduled' then
        fields[#fields + 1] = 'run_at_ms'
        fields[#fields + 1] = run_at
      end
      redis.call('HSET', jk, unpack(fields))
      if status == 'scheduled' then
        redis.call('ZADD', B .. 'scheduled', run_at, id)
        gauge(rank, 'scheduled', 1)
      else
        local r = ready[tonumber(rank) + 1]
        r[#r + 1] = id
      end
      wrote = true
      out[#out + 1] = id
    end
  end
  for r = 0, 3 do
    many('RPUSH', B .. 'ready:' .. r, ready[r + 1])
  end
  flush_stats()
  if wrote then
    redis.call('PUBLISH', B .. 'wake', '1')
  end
  return out
end
