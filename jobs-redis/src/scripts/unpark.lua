-- unpark.lua: ends a parked fetcher's wait (see "Parking" in fetch.lua):
-- it is no longer listed, so nothing more is handed to it, and it takes
-- what was handed to it already.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: the fetcher's id.
-- ARGV[2]: '1' when its BLPOP may still be blocked on the inbox: a mark
--   ('') is left there, which ends that BLPOP at once (the fetcher reads
--   and drops it; the next parking empties the inbox).
-- Returns the inbox's entries (each a packed fetch reply), oldest first,
-- the marks left out.
local id = ARGV[1]
redis.call('ZREM', B .. 'parked', id)
redis.call('HDEL', B .. 'park', id)
local inbox = B .. 'inbox:' .. id
local got = redis.call('LRANGE', inbox, 0, -1)
redis.call('DEL', inbox)
if ARGV[2] == '1' then
  redis.call('RPUSH', inbox, '')
  redis.call('PEXPIRE', inbox, 60000)
end
local out, n = {}, 0
for i = 1, #got do
  if got[i] ~= '' then
    n = n + 1
    out[n] = got[i]
  end
end
return out
