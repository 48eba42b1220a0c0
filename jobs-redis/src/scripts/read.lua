-- read.lua: what is stored of some jobs, read at one instant.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV: ulids.
-- Returns 11 values per ulid: its record, state, log, result, snooze count,
-- expiry, caller id, key field, group field, progress (each nil when
-- absent; no record: no such job) and '1' when it runs and its handler's
-- start is recorded for the attempt that runs (`started` holds the lease's
-- token), else nil.

if #ARGV == 0 then
  return {}
end
local out = {}
local parts = {
  hmget(JOBS, ARGV), hmget(STATE, ARGV), hmget(LOG, ARGV), hmget(RESULT, ARGV), hmget(SNOOZE, ARGV), hmget(EXPIRES, ARGV),
  hmget(CID, ARGV), hmget(CKEY, ARGV), hmget(GROUP, ARGV), hmget(PROGRESS, ARGV),
}
local marks = hmget(STARTED, ARGV)
for i = 1, #ARGV do
  for p = 1, #parts do
    out[#out + 1] = parts[p][i] or false
  end
  local started = false
  local state = parts[2][i]
  if marks[i] and state then
    local st, _, _, token = parse_state(state)
    started = st == 'running' and token == marks[i] and '1'
  end
  out[#out + 1] = started
end
return out
