-- finish.lua: records a batch of finished attempts of one queue (ack with
-- result, fail with retry-at, dead, hand back).
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: now (ms)
-- ARGV[2]: Retention::dead_max (the dead-letter set is trimmed after)
-- ARGV[3]: n, the number of items; then 5 arguments per item:
--   ulid, token, kind, text, at_ms
--   kind 'ok'      succeeded, no result (text and at_ms empty)
--   kind 'okr'     succeeded, text = the result (JSON)
--   kind 'retry'   failed, text = error, at_ms = when to run again
--   kind 'dead'    failed for good, text = error
--   kind 'release' handed back without counting the attempt, text = the
--                  reason (not stored), at_ms = not before ('' = now)
-- Returns one string per item: the job's status afterwards, or 'stale'
-- when the job is not running under this token any more (its lease
-- expired and it was reclaimed or taken again, or it is gone): the newer
-- attempt wins. A job whose cancel was requested ends 'cancelled' whatever
-- the outcome. Publishes on the wake channel when a job became pending or
-- scheduled again.

local now = ARGV[1]
local now_n = tonumber(now)
local n = tonumber(ARGV[3])
local out = {}
local wake = false
local dead = false
local KINDS = { ok = true, okr = true, retry = true, dead = true, release = true }

-- Check the whole batch before writing anything: a script's writes are not
-- rolled back by an error.
for i = 1, n do
  local kind = ARGV[3 + (i - 1) * 5 + 3]
  if not KINDS[kind] then
    return redis.error_reply('finish.lua: unknown kind ' .. tostring(kind))
  end
end

local released = { {}, {}, {}, {} } -- per rank, in batch order
local unleased = {}
local done = {}

for i = 1, n do
  local o = 3 + (i - 1) * 5
  local id, token, kind, text, at = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], ARGV[o + 5]
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'status', 'token', 'priority', 'cancel', 'attempts', 'started_ms', 'log', 'unique')
  local status = 'stale'
  if f[1] == 'running' and f[2] == token then
    local rank = f[3]
    unleased[#unleased + 1] = id
    local function ended(err)
      return append_log(f[7], log_entry(f[5], f[6], now, err))
    end
    if f[4] == '1' or kind == 'ok' or kind == 'okr' then
      if f[4] == '1' then
        -- A cancel was requested: cancelled, whatever the outcome.
        status = 'cancelled'
        redis.call('HSET', jk, 'status', status, 'log', ended('cancelled'), 'finished_ms', now)
      else
        status = 'succeeded'
        if kind == 'okr' then
          redis.call('HSET', jk, 'status', status, 'log', ended(nil), 'finished_ms', now, 'result', text)
        else
          redis.call('HSET', jk, 'status', status, 'log', ended(nil), 'finished_ms', now)
        end
        ended_attempt('processed', rank)
      end
      gauge(rank, 'running', -1)
      done[#done + 1] = now
      done[#done + 1] = id
      -- It never runs again: its deduplication key has no use.
      drop_digest(f[8], id)
    elseif kind == 'retry' then
      status = 'retrying'
      redis.call('HSET', jk, 'status', status, 'log', ended(text), 'run_at_ms', at)
      ended_attempt('failed', rank)
      moved(rank, 'running', status)
      redis.call('ZADD', B .. 'scheduled', at, id)
      wake = true
    elseif kind == 'dead' then
      status = 'dead'
      redis.call('HSET', jk, 'status', status, 'log', ended(text), 'finished_ms', now)
      ended_attempt('failed', rank)
      moved(rank, 'running', status)
      redis.call('ZADD', B .. 'dead', now, id)
      dead = true
    else -- 'release': not an attempt, forget that it started.
      local attempts = math.max((tonumber(f[5]) or 1) - 1, 0)
      wake = true
      if at ~= '' and tonumber(at) > now_n then
        status = 'scheduled'
        redis.call('HSET', jk, 'status', status, 'attempts', ms(attempts), 'run_at_ms', at)
        redis.call('ZADD', B .. 'scheduled', at, id)
      else
        status = 'pending'
        redis.call('HSET', jk, 'status', status, 'attempts', ms(attempts))
        -- First in line again: it was taken before the jobs behind it.
        local r = released[tonumber(rank) + 1]
        r[#r + 1] = id
      end
      moved(rank, 'running', status)
    end
  end
  out[i] = status
end

many('ZREM', B .. 'leased', unleased)
many('ZADD', B .. 'done', done)
for rank = 0, 3 do
  many('LPUSH', B .. 'ready:' .. rank, released[rank + 1])
end
if dead then
  trim_dead(tonumber(ARGV[2]), 1000)
end
flush_stats(now)
if wake then
  redis.call('PUBLISH', B .. 'wake', '1')
end
return out
