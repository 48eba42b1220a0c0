-- archive_take.lua: the oldest entries of one queue's archive backlog, for
-- the archiver that holds the queue (or takes it now).
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: the archiver's name; ARGV[2]: its lease (ms); ARGV[3]: the most
--   entries to read.
-- The queue's archiver is the `archiver` string, which expires with its
-- lease: while another archiver's is live nothing is read. Otherwise the
-- lease is the caller's (taken, or renewed) for ARGV[2] ms from now. An
-- empty backlog has nothing to hold: the lease is left as it is.
-- Returns nil when another archiver holds the queue, else {taken (1: the
-- caller did not hold it just before, 0: renewed or empty), the backlog's length,
-- the entries as XRANGE gives them: {id, {field, value, ...}} each (see
-- archive() in common.lua)}.

local n = redis.call('XLEN', B .. 'archive')
if n == 0 then
  -- Nothing to hold.
  return { 0, 0, {} }
end
local holder = redis.call('GET', B .. 'archiver')
if holder and holder ~= ARGV[1] then
  return false
end
redis.call('SET', B .. 'archiver', ARGV[1], 'PX', ARGV[2])
return { holder and 0 or 1, n, redis.call('XRANGE', B .. 'archive', '-', '+', 'COUNT', ARGV[3]) }
