-- flow_take.lua: takes ended workflow steps and batch jobs of one queue for
-- a relay to apply to their flows (jobs_core::FlowStore::take_ended).
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: the most to take; ARGV[2]: how long (ms) the taken ones stay
--   hidden from other relays (a relay that dies holding them leaves them to
--   the next after that).
-- Returns a flat array, four items per job: ulid, `<flow id> <member>`, its
--   status ('succeeded', 'dead', 'cancelled', 'expired') and its result
--   (JSON; '' for none). An entry whose job is gone, or live again (a dead
--   job retried), is dropped: there is no end to apply.

local now = server_clock()
local ids = redis.call('ZRANGEBYSCORE', B .. 'flowout', '-inf', ms(now), 'LIMIT', '0', ARGV[1])
local n = #ids
if n == 0 then
  return {}
end
local until_ms = ms(now + tonumber(ARGV[2]))
-- The jobs' flow references, states and results, one read each.
local refs = hmget(B .. 'flow', ids)
local states = hmget(STATE, ids)
local results = hmget(RESULT, ids)
local out, no, gone, claimed = {}, 0, {}, {}
for i = 1, n do
  local id = ids[i]
  -- (A job without a state field is pending, or gone: no end either way.)
  local st = refs[i] and states[i] and parse_state(states[i])
  if st == 'succeeded' or st == 'dead' or st == 'cancelled' or st == 'expired' then
    out[no + 1], out[no + 2], out[no + 3] = id, refs[i], st
    out[no + 4] = st == 'succeeded' and results[i] or ''
    no = no + 4
    claimed[#claimed + 1] = until_ms
    claimed[#claimed + 1] = id
  else
    gone[#gone + 1] = id
  end
end
zadd_many(B .. 'flowout', claimed)
zrem_many(B .. 'flowout', gone)
return out
