-- common.lua: helpers that every script below starts with (prepended by
-- scripts.rs; never run on its own).
--
-- KEYS[1]: the queue's key prefix `<prefix>:{<queue>}:`. Every key a script
--          touches is built from it, so all of them share the queue's hash
--          tag and live in one Redis Cluster slot.
--
-- Statuses are the lowercase names of jobs_core::JobStatus. The `stats` hash
-- keeps a gauge per status and priority rank for the statuses that have no
-- list of their own to count (scheduled, retrying, running, dead); every
-- status change moves them (set_status / moved) so they stay exact.

local B = KEYS[1]
local LEASE_LOST = 'lease expired: the worker stopped responding (crashed, killed or stalled)'
local GAUGED = { scheduled = true, retrying = true, running = true, dead = true }

local function jkey(id)
  return B .. 'job:' .. id
end

-- Integer milliseconds as text (Lua numbers are doubles; '%d' never prints
-- an exponent).
local function ms(x)
  return string.format('%d', x)
end

-- Counter and gauge changes are added up here and written by flush_stats(),
-- one HINCRBY per field touched rather than per job. Every script calls
-- flush_stats() before it returns, once it has written anything.
local STATS = {}

local function count(field, delta)
  STATS[field] = (STATS[field] or 0) + delta
end

local function gauge(rank, status, delta)
  if GAUGED[status] then
    count(status .. ':' .. rank, delta)
  end
end

-- Ended attempts of this script for the per-minute history.
local ENDED = { processed = 0, failed = 0 }

-- Counts an ended attempt: `processed` or `failed`, per rank and per minute.
local function ended_attempt(kind, rank)
  count(kind .. ':' .. rank, 1)
  ENDED[kind] = ENDED[kind] + 1
end

-- Writes the counters and gauges. `now` (ms) dates ended attempts in the
-- history: hash `minute:<unix seconds of the minute>` with `processed` and
-- `failed`, expiring after 25 hours (the history reaches back 24).
local function flush_stats(now)
  for field, delta in pairs(STATS) do
    if delta ~= 0 then
      redis.call('HINCRBY', B .. 'stats', field, delta)
    end
  end
  STATS = {}
  if now and (ENDED.processed > 0 or ENDED.failed > 0) then
    local mk = B .. 'minute:' .. ms(math.floor(tonumber(now) / 60000) * 60)
    for kind, n in pairs(ENDED) do
      if n > 0 then
        redis.call('HINCRBY', mk, kind, n)
      end
    end
    redis.call('EXPIRE', mk, 90000)
    ENDED = { processed = 0, failed = 0 }
  end
end

-- `cmd key item...` for many items, in chunks (unpack is bounded by the Lua
-- stack). Chunks are even, so score/member pairs stay together.
local function many(cmd, key, items)
  for i = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, i, math.min(i + 999, #items)))
  end
end

-- Moves the gauges for a status change (the caller writes the status).
local function moved(rank, old, new)
  if old ~= new then
    gauge(rank, old, -1)
    gauge(rank, new, 1)
  end
end

local function set_status(jk, rank, old, new)
  redis.call('HSET', jk, 'status', new)
  moved(rank, old, new)
end

-- One ended attempt as a JSON object of the `log` array.
local function log_entry(attempt, started_ms, now, err)
  return '{"attempt":' .. (attempt or '0') .. ',"started_ms":' .. (started_ms or now)
    .. ',"finished_ms":' .. now .. ',"error":' .. (err and cjson.encode(err) or 'null') .. '}'
end

-- The `log` array text with one more entry.
local function append_log(log, entry)
  if not log or log == '' or log == '[]' then
    return '[' .. entry .. ']'
  end
  return string.sub(log, 1, -2) .. ',' .. entry .. ']'
end

-- Ends the running attempt: appends it to the job's log (a JSON array of
-- {attempt, started_ms, finished_ms, error}) with `err` (nil: success). The
-- running attempt's start is kept apart, in `started_ms`, until then.
--
-- Fields that only mean something in some statuses are left in place when
-- the status moves on, saving a command per job: `started_ms` is read only
-- while `running`, `run_at_ms` only while `scheduled` or `retrying`,
-- `finished_ms` only while `succeeded`, `dead` or `cancelled`.
local function end_attempt(jk, now, err)
  local f = redis.call('HMGET', jk, 'attempts', 'started_ms', 'log')
  redis.call('HSET', jk, 'log', append_log(f[3], log_entry(f[1], f[2], now, err)))
end

-- Deletes the deduplication key `digest` when it still names job `id`.
local function drop_digest(digest, id)
  if digest and digest ~= '' then
    local uk = B .. 'uniq:' .. digest
    if redis.call('GET', uk) == id then
      redis.call('DEL', uk)
    end
  end
end

-- Deletes the job's deduplication key when it still names this job.
local function drop_unique(jk, id)
  drop_digest(redis.call('HGET', jk, 'unique'), id)
end

-- Succeeded or cancelled: kept in `done` until the retention sweep.
local function finish_record(id, jk, rank, old, status, now)
  set_status(jk, rank, old, status)
  redis.call('HSET', jk, 'finished_ms', now)
  redis.call('ZADD', B .. 'done', now, id)
  -- A succeeded or cancelled job never runs again: its key has no use.
  drop_unique(jk, id)
end

-- Moves a running job to the dead-letter set.
local function to_dead(id, jk, rank, old, now)
  set_status(jk, rank, old, 'dead')
  redis.call('HSET', jk, 'finished_ms', now)
  redis.call('ZADD', B .. 'dead', now, id)
end

-- Deletes a dead job (already taken out of the `dead` zset).
local function forget_dead(id)
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'status', 'priority', 'unique')
  if f[1] == 'dead' then
    gauge(f[2], 'dead', -1)
  end
  drop_digest(f[3], id)
  redis.call('DEL', jk)
end

-- Drops the oldest dead jobs past `dead_max`, at most `limit` per call.
local function trim_dead(dead_max, limit)
  local over = redis.call('ZCARD', B .. 'dead') - dead_max
  if over <= 0 then
    return
  end
  local popped = redis.call('ZPOPMIN', B .. 'dead', math.min(over, limit))
  for i = 1, #popped, 2 do
    forget_dead(popped[i])
  end
end
