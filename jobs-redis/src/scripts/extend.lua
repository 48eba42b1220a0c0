-- extend.lua: extend-leases, a batch of heartbeats of one queue.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: now (ms)
-- ARGV[2]: lease (ms): each lease held is extended to now + lease
-- ARGV[3..]: pairs of ulid, token
-- Returns one string per pair: 'held' (extended), 'cancel' (extended, and a
-- cancel was requested: the worker signals the job) or 'lost' (not running
-- under this token any more: the worker's result will be refused).

local until_ms = string.format('%d', tonumber(ARGV[1]) + tonumber(ARGV[2]))
local out = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', jkey(id), 'status', 'token', 'cancel')
  if f[1] == 'running' and f[2] == token then
    redis.call('ZADD', B .. 'leased', until_ms, id)
    if f[3] == '1' then
      out[#out + 1] = 'cancel'
    else
      out[#out + 1] = 'held'
    end
  else
    out[#out + 1] = 'lost'
  end
end
return out
