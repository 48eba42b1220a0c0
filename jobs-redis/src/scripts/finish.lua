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

for i = 1, n do
  local o = 3 + (i - 1) * 5
  local id, token, kind, text, at = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], ARGV[o + 5]
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'status', 'token', 'priority', 'cancel')
  local status = 'stale'
  if f[1] == 'running' and f[2] == token then
    local rank = f[3]
    redis.call('ZREM', B .. 'leased', id)
    if f[4] == '1' then
      end_attempt(jk, now, 'cancelled')
      finish_record(id, jk, rank, 'running', 'cancelled', now)
      status = 'cancelled'
    elseif kind == 'ok' or kind == 'okr' then
      end_attempt(jk, now, nil)
      if kind == 'okr' then
        redis.call('HSET', jk, 'result', text)
      end
      redis.call('HINCRBY', B .. 'stats', 'processed:' .. rank, 1)
      finish_record(id, jk, rank, 'running', 'succeeded', now)
      status = 'succeeded'
    elseif kind == 'retry' then
      end_attempt(jk, now, text)
      redis.call('HINCRBY', B .. 'stats', 'failed:' .. rank, 1)
      set_status(jk, rank, 'running', 'retrying')
      redis.call('HSET', jk, 'run_at_ms', at)
      redis.call('ZADD', B .. 'scheduled', at, id)
      wake = true
      status = 'retrying'
    elseif kind == 'dead' then
      end_attempt(jk, now, text)
      redis.call('HINCRBY', B .. 'stats', 'failed:' .. rank, 1)
      to_dead(id, jk, rank, 'running', now)
      dead = true
      status = 'dead'
    else -- 'release'
      -- Not an attempt: forget that it started.
      redis.call('HDEL', jk, 'started_ms')
      if redis.call('HINCRBY', jk, 'attempts', -1) < 0 then
        redis.call('HSET', jk, 'attempts', '0')
      end
      wake = true
      if at ~= '' and tonumber(at) > now_n then
        set_status(jk, rank, 'running', 'scheduled')
        redis.call('HSET', jk, 'run_at_ms', at)
        redis.call('ZADD', B .. 'scheduled', at, id)
        status = 'scheduled'
      else
        set_status(jk, rank, 'running', 'pending')
        -- First in line again: it was taken before the jobs behind it.
        redis.call('LPUSH', B .. 'ready:' .. rank, id)
        status = 'pending'
      end
    end
  end
  out[i] = status
end

if dead then
  trim_dead(tonumber(ARGV[2]), 1000)
end
if wake then
  redis.call('PUBLISH', B .. 'wake', '1')
end
return out
