-- extend.lua: extend-leases, a batch of heartbeats of one queue.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: lease (ms): each lease held is extended to the server's now +
--          lease (a lease is that of one fetch call: see common.lua)
-- ARGV[2..]: pairs of ulid, token
-- Returns one character per pair: 'h' (held: extended), 'c' (extended, and
-- a cancel was requested: the worker signals the job) or 'l' (lost: not
-- running under this token any more; the worker's result will be refused).

local ids, tokens = {}, {}
for i = 2, #ARGV, 2 do
  ids[#ids + 1] = ARGV[i]
  tokens[#tokens + 1] = ARGV[i + 1]
end
if #ids == 0 then
  return ''
end
local states = hmget(STATE, ids)
local out, held = {}, {}
for i = 1, #ids do
  local code = 'l'
  if states[i] then
    local st, _, _, token, _, _, cancel = parse_state(states[i])
    if st == 'running' and token == tokens[i] then
      held[token] = true
      code = cancel == '1' and 'c' or 'h'
    end
  end
  out[i] = code
end
-- A lease is one per fetch call (see common.lua): extending it extends
-- every job of it still running.
if next(held) then
  local until_ms = ms(server_clock() + tonumber(ARGV[1]))
  for token in pairs(held) do
    redis.call('ZADD', B .. 'leased', 'XX', until_ms, token)
  end
end
return table.concat(out)
