-- archive_ack.lua: removes the entries of one queue's archive backlog that
-- its sink now holds.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: the last position written (entries up to `<ARGV[1]>-0` go).
-- Returns how many entries are left.

redis.call('XTRIM', B .. 'archive', 'MINID', (tonumber(ARGV[1]) + 1) .. '-0')
return redis.call('XLEN', B .. 'archive')
