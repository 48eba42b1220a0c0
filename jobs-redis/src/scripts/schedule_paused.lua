-- schedule_paused.lua: pauses or resumes one schedule.
--
-- KEYS[1]: prefix of the schedule's queue (see common.lua).
-- ARGV[1]: the schedule's name
-- ARGV[2]: '1' to pause, '0' to resume
-- Returns 1, or 0 when no such schedule is stored (nothing written).

local sk = B .. 'schedule:' .. ARGV[1]
if redis.call('EXISTS', sk) == 0 then
  return 0
end
redis.call('HSET', sk, 'paused', ARGV[2])
return 1
