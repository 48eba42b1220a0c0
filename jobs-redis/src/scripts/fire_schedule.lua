-- fire_schedule.lua: handles one tick of a recurring schedule, exactly once
-- across processes (after common.lua and enqueue.lua).
--
-- KEYS[1]: prefix of the schedule's queue (see common.lua); the schedule
--          lives in that queue's slot as `schedule:<name>`, so recording the
--          tick and enqueueing its job are one atomic step.
-- ARGV[1]: the schedule's name
-- ARGV[2]: the tick (ms)
-- ARGV[3]: '1' when a job is to be enqueued, '0' to skip the tick; then the
--          job's 5 enqueue arguments (see enqueue.lua) when '1'.
-- The job's delay and `last_run_ms` are on the server's clock. (Which ticks
-- are due is the caller's decision, made on the server's clock too: see
-- `JobQueue::now`.)
-- Returns {'notfound'} (also while the record is being moved); {'done'}
-- when this tick (or a later one) was handled already (nothing written);
-- {'ok', ulid or ''} when the tick was recorded (with the job enqueued, or
-- skipped); or enqueue's refusal
-- ({'full', ..} / {'priority', ..}), leaving the tick unhandled.

local sk = B .. 'schedule:' .. ARGV[1]
local tick = tonumber(ARGV[2])
-- A record being moved to another queue (`moved`, see schedules.rs) fires
-- nothing more here: its state is being copied.
if redis.call('EXISTS', sk) == 0 or redis.call('HEXISTS', sk, 'moved') == 1 then
  return { 'notfound' }
end
local last = tonumber(redis.call('HGET', sk, 'last_tick_ms'))
if last and last >= tick then
  return { 'done' }
end
local id = ''
if ARGV[3] == '1' then
  local now = server_clock()
  local out = enqueue(now, 1, 3, false)
  if out[1] ~= 'ok' then
    return out
  end
  id = out[2]
  redis.call('HSET', sk, 'last_run_ms', ms(now), 'last_job', id)
end
redis.call('HSET', sk, 'last_tick_ms', ARGV[2])
return { 'ok', id }
