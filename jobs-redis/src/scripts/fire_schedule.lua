-- fire_schedule.lua: handles one tick of a recurring schedule, exactly once
-- across processes (after common.lua and enqueue.lua).
--
-- KEYS[1]: prefix of the schedule's queue (see common.lua); the schedule
--          lives in that queue's slot as `schedule:<name>`, so recording the
--          tick and enqueueing its job are one atomic step.
-- ARGV[1]: the schedule's name
-- ARGV[2]: the tick (ms)
-- ARGV[3]: '1' when a job is to be enqueued, '0' to skip the tick; then the
--          job's enqueue arguments (see enqueue.lua) when '1'.
-- The job's delay and `last_run_ms` are on the server's clock. (Which ticks
-- are due is the caller's decision, made on the server's clock too: see
-- `JobQueue::now`.)
--
-- Overlap (the record's `overlap` field, written with the definition; none
-- is `allow`): while the record's `last_job` has not finished, a tick with a
-- job is recorded without enqueueing it: under `queue` it is held
-- (`held_tick_ms`) when no tick is held yet, otherwise (and under `skip`)
-- counted in `skipped` with `last_skipped_ms`. A call whose tick is the held
-- one releases it: it enqueues the job once `last_job` has finished and
-- clears the hold, else it writes nothing. Any enqueue clears a hold (that
-- job runs for the held tick too). Deciding here, in the script that
-- enqueues, is what keeps two schedulers from both seeing the last job done.
--
-- Returns {'notfound'} (also while the record is being moved); {'done'}
-- when this tick (or a later one) was handled already, or the held tick
-- still waits (nothing written); {'waits'} when the tick was recorded as
-- held or skipped by the overlap policy; {'ok', ulid or ''} when the tick
-- was recorded (with the job enqueued, or skipped); or enqueue's refusal
-- ({'full', ..} / {'priority', ..}), leaving the tick unhandled.

local sk = B .. 'schedule:' .. ARGV[1]
local tick = tonumber(ARGV[2])
-- A record being moved to another queue (`moved`, see schedules.rs) fires
-- nothing more here: its state is being copied.
if redis.call('EXISTS', sk) == 0 or redis.call('HEXISTS', sk, 'moved') == 1 then
  return { 'notfound' }
end
local with_job = ARGV[3] == '1'
-- Whether the schedule's last job has yet to finish (a job that is gone
-- has finished).
local function busy()
  local last_job = redis.call('HGET', sk, 'last_job')
  if not last_job then
    return false
  end
  local status = load_state(last_job)
  return status ~= nil and not is_done(status) and status ~= 'dead'
end
local held = redis.call('HGET', sk, 'held_tick_ms')
local releasing = held ~= false and tonumber(held) == tick
if releasing then
  if not with_job or busy() then
    return { 'done' }
  end
else
  local last = tonumber(redis.call('HGET', sk, 'last_tick_ms'))
  if last and last >= tick then
    return { 'done' }
  end
  local overlap = redis.call('HGET', sk, 'overlap')
  if with_job and (overlap == 'skip' or overlap == 'queue') and busy() then
    redis.call('HSET', sk, 'last_tick_ms', ARGV[2])
    if overlap == 'queue' and not held then
      redis.call('HSET', sk, 'held_tick_ms', ARGV[2])
    else
      redis.call('HINCRBY', sk, 'skipped', 1)
      redis.call('HSET', sk, 'last_skipped_ms', ARGV[2])
    end
    return { 'waits' }
  end
end
local id = ''
if with_job then
  local now = server_clock()
  local out = enqueue(now, 1, 3, false)
  if out[1] ~= 'ok' then
    return out
  end
  id = out[2]
  redis.call('HSET', sk, 'last_run_ms', ms(now), 'last_job', id)
  redis.call('HDEL', sk, 'held_tick_ms')
end
if not releasing then
  redis.call('HSET', sk, 'last_tick_ms', ARGV[2])
end
return { 'ok', id }
