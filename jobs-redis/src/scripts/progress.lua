-- progress.lua: stores a running job's progress (report-progress).
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: ulid
-- ARGV[2]: token of the lease the writer holds
-- ARGV[3]: fraction done, 0 to 1 (text; checked by the client)
-- ARGV[4]: note (at most jobs_core::MAX_PROGRESS_NOTE bytes, may be empty)
-- Writes `progress` (ulid -> `<fraction>|<at_ms>|<attempt>|<note>`, at on
-- the server's clock) and a 'progress' event whose detail is
-- `<fraction> <note>`, only while the job runs under this token: a worker
-- whose lease was reclaimed, or whose attempt ended, writes nothing.
-- Returns 's' (stored) or 'x' (stale: nothing written).

local id, token, fraction, note = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local s = redis.call('HGET', STATE, id)
if not s then
  return 'x'
end
local st, _, attempts, held = parse_state(s)
if st ~= 'running' or held ~= token then
  return 'x'
end
local now = server_clock()
redis.call('HSET', PROGRESS, id, fraction .. '|' .. ms(now) .. '|' .. attempts .. '|' .. note)
emit('progress', id, attempts, fraction .. ' ' .. note)
flush_stats()
return 's'
