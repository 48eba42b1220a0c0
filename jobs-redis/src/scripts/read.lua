-- read.lua: what is stored of some jobs, read at one instant.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV: ulids.
-- Returns 10 values per ulid: its record, state, log, result, snooze count,
-- expiry, caller id, key field, group field and progress (each nil when
-- absent; no record: no such job).

if #ARGV == 0 then
  return {}
end
local out = {}
local parts = {
  hmget(JOBS, ARGV), hmget(STATE, ARGV), hmget(LOG, ARGV), hmget(RESULT, ARGV), hmget(SNOOZE, ARGV), hmget(EXPIRES, ARGV),
  hmget(CID, ARGV), hmget(CKEY, ARGV), hmget(GROUP, ARGV), hmget(PROGRESS, ARGV),
}
for i = 1, #ARGV do
  for p = 1, #parts do
    out[#out + 1] = parts[p][i] or false
  end
end
return out
