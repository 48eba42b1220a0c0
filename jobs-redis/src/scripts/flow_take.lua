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
local ids = redis.call('ZRANGEBYSCORE', B .. 'flowout', '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
if #ids == 0 then
  return {}
end
local until_ms = ms(now + tonumber(ARGV[2]))
local refs = hmget(B .. 'flow', ids)
local out, gone, claimed = {}, {}, {}
for i, id in ipairs(ids) do
  local st = refs[i] and load_state(id)
  if st == 'succeeded' or st == 'dead' or st == 'cancelled' or st == 'expired' then
    out[#out + 1] = id
    out[#out + 1] = refs[i]
    out[#out + 1] = st
    out[#out + 1] = st == 'succeeded' and (redis.call('HGET', RESULT, id) or '') or ''
    claimed[#claimed + 1] = until_ms
    claimed[#claimed + 1] = id
  else
    gone[#gone + 1] = id
  end
end
zadd_many(B .. 'flowout', claimed)
zrem_many(B .. 'flowout', gone)
return out
