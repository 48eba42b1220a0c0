-- cancel.lua: cancels one job.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: ulid
-- A cancelled job's finish time is the server's clock.
-- Returns 'notfound'; 'requested' (it is running: the cancel flag is set,
-- its worker learns it at the next heartbeat and the attempt ends
-- cancelled); 'finished:<status>' (nothing changed); or 'cancelled' (it was
-- pending, scheduled or retrying: taken out of its list or zset and marked
-- cancelled; kept until the retention sweep).
-- Taking a pending job out of its ready list is an LREM, linear in the
-- list's length: cancel is an operator's call, not a hot path.

local id = ARGV[1]
local st, rank, attempts, token, t1, t2, _, digest = load_state(id)
if not st then
  return 'notfound'
end
if st == 'running' then
  redis.call('HSET', STATE, id, state_of(st, rank, attempts, token, t1, t2, '1', digest))
  return 'requested'
end
if is_done(st) or st == 'dead' then
  return 'finished:' .. st
end
redis.call('ZREM', B .. 'scheduled', id)
if st == 'pending' then
  remove_ready(id, rank)
end
finish_record(id, 'cancelled', rank, st, attempts, token, '', digest, ms(server_clock()))
emit('cancelled', id, attempts)
flush_stats()
return 'cancelled'
