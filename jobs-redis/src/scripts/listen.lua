-- listen.lua: keeps the queue's job events recorded for a while (see
-- "Job events" in common.lua).
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: the history cap (the most entries `events` keeps)
-- ARGV[2]: how long recording stays on without another call (ms)
-- Returns {was_on, newest}: was_on '1' when recording was on already (some
-- listener kept it alive), else '0'; newest the id of the newest event the
-- stream holds, '0-1' when none (what is recorded from now on comes after
-- it; not '0-0', which read_events takes for "from the oldest held" and
-- for which it reports no gap).

local was = redis.call('SET', B .. 'events:on', ARGV[1], 'PX', ARGV[2], 'GET')
local newest = redis.call('XREVRANGE', B .. 'events', '+', '-', 'COUNT', 1)
return { was and '1' or '0', newest[1] and newest[1][1] or '0-1' }
