-- fetch.lua: fetch-batch-with-lease for one queue (after common.lua,
-- promote.lua, reclaim.lua and sweep.lua, whose functions it calls).
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: now (ms)
-- ARGV[2]: max, the most jobs to lease (0: only the housekeeping below)
-- ARGV[3]: lease (ms)
-- ARGV[4]: default_max_retries (for reclaimed jobs that carry none)
-- ARGV[5]: batch bound for promotion, reclaim and sweeps (1000)
-- ARGV[6]: Retention::succeeded (ms)
-- ARGV[7]: Retention::dead_age (ms)
-- ARGV[8]: Retention::dead_max
-- Does, atomically: promote due jobs, reclaim expired leases, sweep past
-- retention, trim the dead-letter set; then, unless the queue is paused,
-- pops up to max ids, most urgent priority first and FIFO within one, and
-- leases each: a fresh fencing token (the queue's `seq` counter), the
-- attempt counted and started now, expiry now + lease in `leased`.
-- Returns {next_due_ms or '', then 10 strings per leased job:
--   ulid, name, payload, rank, attempt, max_retries or '', timeout_ms or '',
--   enqueued_ms, token, headers or ''}
-- where next_due_ms is the earliest score of `scheduled` and `leased`: when
-- a fetcher must look again even if no wake-up comes.

local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local batch = tonumber(ARGV[5])

promote(now, batch)
reclaim(now, batch, tonumber(ARGV[4]))
sweep(now, tonumber(ARGV[6]), tonumber(ARGV[7]), batch)
trim_dead(tonumber(ARGV[8]), batch)

local out = { '' }
local leases = {}
if max > 0 and redis.call('HGET', B .. 'meta', 'paused') ~= '1' then
  local until_ms = ms(now + lease)
  local taken = 0
  for rank = 0, 3 do
    if taken >= max then
      break
    end
    local ids = redis.call('LPOP', B .. 'ready:' .. rank, max - taken)
    if ids then
      local last = redis.call('INCRBY', B .. 'seq', #ids)
      for i, id in ipairs(ids) do
        local jk = jkey(id)
        local f = redis.call('HMGET', jk, 'name', 'payload', 'max_retries', 'timeout_ms', 'enqueued_ms', 'status',
          'attempts', 'headers')
        if f[1] then
          local token = ms(last - #ids + i)
          local attempt = ms((tonumber(f[7]) or 0) + 1)
          redis.call('HSET', jk, 'status', 'running', 'token', token, 'started_ms', ARGV[1], 'attempts', attempt)
          moved(rank, f[6], 'running')
          leases[#leases + 1] = until_ms
          leases[#leases + 1] = id
          taken = taken + 1
          local n = #out
          out[n + 1] = id
          out[n + 2] = f[1]
          out[n + 3] = f[2]
          out[n + 4] = tostring(rank)
          out[n + 5] = attempt
          out[n + 6] = f[3] or ''
          out[n + 7] = f[4] or ''
          out[n + 8] = f[5] or '0'
          out[n + 9] = token
          out[n + 10] = f[8] or ''
        end
      end
    end
  end
end
many('ZADD', B .. 'leased', leases)
flush_stats(ARGV[1])

local first = nil
for _, z in ipairs({ 'scheduled', 'leased' }) do
  local head = redis.call('ZRANGE', B .. z, 0, 0, 'WITHSCORES')
  if head[2] then
    local t = tonumber(head[2])
    if not first or t < first then
      first = t
    end
  end
end
if first then
  out[1] = ms(first)
end
return out
