-- cancel.lua: cancels one job.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: now (ms)
-- ARGV[2]: ulid
-- Returns 'notfound'; 'requested' (it is running: the cancel flag is set,
-- its worker learns it at the next heartbeat and the attempt ends
-- cancelled); 'finished:<status>' (nothing changed); or 'cancelled' (it was
-- pending, scheduled or retrying: taken out of its list or zset and marked
-- cancelled; kept until the retention sweep).
-- Taking a pending job out of its ready list is an LREM, linear in the
-- list's length: cancel is an operator's call, not a hot path.

local now, id = ARGV[1], ARGV[2]
local jk = jkey(id)
local f = redis.call('HMGET', jk, 'status', 'priority')
local st, rank = f[1], f[2]
if not st then
  return 'notfound'
end
if st == 'running' then
  redis.call('HSET', jk, 'cancel', '1')
  return 'requested'
end
if st == 'succeeded' or st == 'dead' or st == 'cancelled' then
  return 'finished:' .. st
end
redis.call('ZREM', B .. 'scheduled', id)
redis.call('LREM', B .. 'ready:' .. rank, 1, id)
finish_record(id, jk, rank, st, 'cancelled', now)
flush_stats()
return 'cancelled'
