-- breaker.lua: a queue's circuit breaker (jobs_core::Breaker), after
-- common.lua in every script.
--
-- The queue's `meta` hash holds the breaker's configuration, `breaker`
-- (`<failures>,<within ms>,<cooldown ms>`, written with the policy; ''
-- for none), and its state: `bstate` ('' closed, 'open', 'probe'),
-- `buntil` (ms: when the cool-down ends, or the probe's lease), `bprobe`
-- (the probe's job id) and `bopened` (times it opened). The sorted set
-- `bfail` logs the failed attempts of the current window, by time.
-- fetch.lua leases nothing while it is open, then one probe; finish.lua
-- counts failures and ends a probe.

-- {failures, within, cooldown, state, probe} as read once per call.
local BRK = nil

-- Sets the breaker from meta's `breaker`, `bstate` and `bprobe`, read by
-- the calling script with the other meta fields it needs.
local function breaker_set(config, state, probe)
  local n, within, cool = string.match(config or '', '^(%d+),(%d+),(%d+)$')
  BRK = { tonumber(n), tonumber(within), tonumber(cool), state or '', probe or '' }
end

local function breaker_load()
  if BRK == nil then
    local m = redis.call('HMGET', B .. 'meta', 'breaker', 'bstate', 'bprobe')
    breaker_set(m[1], m[2], m[3])
  end
  return BRK
end

-- Opens the breaker until `till` (ms).
local function breaker_open(till)
  redis.call('HSET', B .. 'meta', 'bstate', 'open', 'buntil', ms(till), 'bprobe', '')
  redis.call('HINCRBY', B .. 'meta', 'bopened', 1)
  redis.call('DEL', B .. 'bfail')
  if BRK then
    BRK[4], BRK[5] = 'open', ''
  end
end

-- Closes the breaker and forgets the failures counted.
local function breaker_close()
  redis.call('HSET', B .. 'meta', 'bstate', '', 'buntil', '', 'bprobe', '')
  redis.call('DEL', B .. 'bfail')
  if BRK then
    BRK[4], BRK[5] = '', ''
  end
end

-- Job `id` was leased as the probe; its lease lapses at `till` (ms).
local function breaker_probe(id, till)
  redis.call('HSET', B .. 'meta', 'bstate', 'probe', 'buntil', ms(till), 'bprobe', id)
end

-- An attempt of job `id` failed at `now` (ms): counted while closed (the
-- breaker opens at its bound); a failed probe opens it again.
local function breaker_failed(id, now)
  local b = breaker_load()
  if not b[1] then
    return
  end
  if b[4] == 'probe' and b[5] == id then
    breaker_open(now + b[3])
  elseif b[4] == '' then
    local log = B .. 'bfail'
    redis.call('ZADD', log, now, id .. ':' .. now)
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - b[2])
    redis.call('PEXPIRE', log, b[2])
    if redis.call('ZCARD', log) >= b[1] then
      breaker_open(now + b[3])
    end
  end
end

-- Job `id` succeeded: whether that closed the breaker (it was the probe).
local function breaker_succeeded(id)
  local b = breaker_load()
  if b[4] == 'probe' and b[5] == id then
    breaker_close()
    return true
  end
  return false
end
