-- flows_common.lua: what every script of the flow store starts with
-- (prepended by flows/scripts.rs; never run on its own). The flow store
-- holds workflows and batches (jobs_core::FlowStore), all in one hash tag
-- of their own, `{:flows}`, so that one script sees a whole flow; a step's
-- job lives in its queue's slot, and the two meet only through the relay
-- (see jobs_core::FlowStore).
--
-- KEYS[1]: the flow store's prefix `<prefix>:{:flows}:` (F below); every
--   key name is F .. '<suffix>' (see flow_keys in keys.rs).
-- KEYS[2]: on Redis Cluster only, the fence (see common.lua).
--
-- Per flow <id>:
--   f:<id>        hash: kind (workflow|batch), status (running|succeeded|
--                 failed|cancelled), closed ('1': ends once its members
--                 have), cancelled ('1'), created, ended_at (ms), total,
--                 ended, ok (member counts)
--   f:<id>:st     hash member -> status: w waiting, o releasing (its job
--                 being enqueued), r released, S succeeded, d dead,
--                 x expired, c cancelled. Callbacks (`@on_success`,
--                 `@on_complete`) are members that count in no total.
--   f:<id>:left   hash member -> dependencies not ended yet
--   f:<id>:after  hash member -> its dependencies, `<p>:<name>` lines
--                 (p: c cancel, k continue when that one fails)
--   f:<id>:kids   hash member -> its dependants, `<p>:<name>` lines
--   f:<id>:spec   hash member -> its job (JSON of jobs_core::NewJob's
--                 fields, as flows/spec.rs writes it: opaque here),
--                 dropped once its release is reported
--   f:<id>:info   hash member -> `<job id>\t<job name>`
--   f:<id>:res    hash member -> its result (JSON), kept for members that
--                 have dependants (they are given it)
--   f:<id>:tr     hash member -> when its release was last handed out (ms)
--   f:<id>:te     hash member -> when it ended (ms)
--   f:<id>:order  list of members, in the order they were added
-- Store-wide:
--   index, index:workflow, index:batch   zsets id -> created (ms)
--   ended         zset id -> ended (ms): past FLOWS_KEPT, the oldest go
--   out           zset `<id>\n<member>` -> when its release was handed out
--                 (not reported yet: flow_stale.lua hands it out again)
--   wake          channel, published when members or flows ended
--
-- Every time stored is the server's clock.

local F = KEYS[1]
local now = (function()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end)()
local NOW = string.format('%d', now)

-- The key of flow `id`'s part `part` (see above), each built once per
-- script call: the string a concatenation builds is hashed whole, which
-- cost a step more than some of the commands it names.
local k
do
  local built = {}
  k = function(id, part)
    local parts = built[id]
    if not parts then
      parts = {}
      built[id] = parts
    end
    local key = parts[part]
    if not key then
      key = F .. 'f:' .. id .. part
      parts[part] = key
    end
    return key
  end
end

-- Writes of this call, sent at its end (flush): per key, its pairs
-- (field and value for a hash, score and member for `out`) in the order
-- they were made, so a later value of a field wins as it would have. A
-- member's fields are many commands of one field each; sent this way a
-- call makes a few commands per key however many members it writes. What
-- a call reads back of its own writes comes from its caches (ST, RES).
local W, WN, WKEYS = {}, {}, {}

local function later(key, a, b)
  local t = W[key]
  if not t then
    t = {}
    W[key] = t
    WN[key] = 0
    WKEYS[#WKEYS + 1] = key
  end
  local c = WN[key]
  t[c + 1], t[c + 2] = a, b
  WN[key] = c + 2
end

-- Sends the writes made so far (before a flow's keys are deleted, and at
-- the end of every call that writes: releases()).
local function flush()
  local out = F .. 'out'
  for i = 1, #WKEYS do
    local key = WKEYS[i]
    local t, n = W[key], WN[key]
    if key == out then
      chunked('ZADD', key, t, n)
    else
      hset_many(key, t, n)
    end
  end
  W, WN, WKEYS = {}, {}, {}
end

-- Releases handed out by this call: { flow, member, spec, deps }.
local REL = {}
local CHANGED = false
-- Results of dependencies read by this call, per flow by member: a
-- fan-out reads its one dependency's result once.
local RES = {}
-- Members ended and succeeded by this call, per flow, not yet added to its
-- record (check_end writes them: once per flow and call, not once per
-- end).
local ENDED, OK = {}, {}

-- HMGET of many fields, in chunks (unpack is bounded by the Lua stack).
local function hmget(key, fields)
  local n = #fields
  if n <= 1000 then
    return redis.call('HMGET', key, unpack(fields))
  end
  local out, no = {}, 0
  for i = 1, n, 1000 do
    local part = redis.call('HMGET', key, unpack(fields, i, math.min(i + 999, n)))
    for j = 1, #part do
      out[no + j] = part[j]
    end
    no = no + #part
  end
  return out
end

-- The members named in ARGV (n of them, from ARGV[first], `stride`
-- arguments apart, each a flow id then a member name), by flow: the
-- flows in the order first named, and per flow its members in order.
local function members_by_flow(n, first, stride)
  local flows, names_of = {}, {}
  for i = 0, n - 1 do
    local at = first + i * stride
    local id = ARGV[at]
    local names = names_of[id]
    if not names then
      names = {}
      names_of[id] = names
      flows[#flows + 1] = id
    end
    names[#names + 1] = ARGV[at + 1]
  end
  return flows, names_of
end

-- Hands out member m of flow id (its status set to 'o' by the caller):
-- its job and the results of its dependencies. `spec` and `after`, when
-- the caller has them (a member written by this call): its job and its
-- dependencies ('' for none); else they are read.
local function release(id, m, spec, after)
  if not spec then
    spec = redis.call('HGET', k(id, ':spec'), m)
    if not spec then
      return
    end
    after = redis.call('HGET', k(id, ':after'), m)
  end
  local deps = {}
  if after and after ~= '' then
    local res = RES[id]
    if not res then
      res = {}
      RES[id] = res
    end
    -- The results not read yet by this call, read at once: a fan-in's
    -- member reads thousands, one command per thousand rather than each.
    local missing, at = nil, nil
    for name in string.gmatch(after, '%a:([^\n]+)') do
      local r = res[name]
      deps[#deps + 1] = name
      deps[#deps + 1] = r or ''
      if not r then
        if not missing then
          missing, at = {}, {}
        end
        missing[#missing + 1] = name
        at[#at + 1] = #deps
      end
    end
    if missing then
      local got = hmget(k(id, ':res'), missing)
      for i, name in ipairs(missing) do
        local r = got[i] or ''
        res[name] = r
        deps[at[i]] = r
      end
    end
  end
  REL[#REL + 1] = { id, m, spec, deps }
  later(F .. 'out', NOW, id .. '\n' .. m)
  later(k(id, ':tr'), m, NOW)
end

-- Members' statuses read or written by this call, per flow by member
-- (false: none): the dependants of a fan-in read its status once per
-- call, not once per dependency that ended. Every write of a status in
-- this file goes through set_st.
local ST = {}

-- Flow id's statuses known to this call (see ST).
local function sts_of(id)
  local t = ST[id]
  if not t then
    t = {}
    ST[id] = t
  end
  return t
end

-- Member m's status (nil: none).
local function get_st(id, m)
  local t = sts_of(id)
  local v = t[m]
  if v == nil then
    v = redis.call('HGET', k(id, ':st'), m) or false
    t[m] = v
  end
  return v or nil
end

-- Sets member m's status to v.
local function set_st(id, m, v)
  later(k(id, ':st'), m, v)
  sts_of(id)[m] = v
end

-- Records member m's end (its flow's counters in ENDED and OK, flushed by
-- check_end).
local function set_end(id, m, st)
  set_st(id, m, st)
  later(k(id, ':te'), m, NOW)
  ENDED[id] = (ENDED[id] or 0) + 1
  if st == 'S' then
    OK[id] = (OK[id] or 0) + 1
  end
  CHANGED = true
end

-- Dependencies ended by this call whose dependants are not counted down
-- yet (count_down): per flow by dependant, how many (DOWN); per flow its
-- dependants in the order they were first counted (DOWN_KIDS), and the
-- flows in that order (DOWN_FLOWS). A fan-in's node is counted down once
-- per call, not once per dependency that ended.
local DOWN, DOWN_KIDS, DOWN_FLOWS = {}, {}, {}

-- Ends member m (not ended) and the dependants its end cancels; counts
-- down the dependants it lets go on. Each member on the work list has just
-- been given its end status (`ends`), so none is read back. `kids`: m's
-- dependants when the caller read them (false: none), nil to read them.
local function end_member(id, m, st, result, kids)
  set_end(id, m, st)
  if kids == nil then
    kids = redis.call('HGET', k(id, ':kids'), m)
  end
  -- Its result is kept for its dependants.
  if st == 'S' and result and result ~= '' and kids then
    later(k(id, ':res'), m, result)
    local res = RES[id]
    if not res then
      res = {}
      RES[id] = res
    end
    res[m] = result
  end
  local work, ends, nw = { m }, { st }, 1
  while nw > 0 do
    local i, ist = work[nw], ends[nw]
    work[nw], ends[nw] = nil, nil
    nw = nw - 1
    if i ~= m then
      kids = redis.call('HGET', k(id, ':kids'), i)
    end
    if kids then
      -- Its dependants, and the statuses this call does not know yet read
      -- at once (a fan-out's).
      local pols, names, nk, unknown, nu = {}, {}, 0, {}, 0
      local known = sts_of(id)
      for pol, kid in string.gmatch(kids, '(%a):([^\n]+)') do
        nk = nk + 1
        pols[nk], names[nk] = pol, kid
        if known[kid] == nil then
          nu = nu + 1
          unknown[nu] = kid
        end
      end
      if nu > 0 then
        local sts = hmget(k(id, ':st'), unknown)
        for j = 1, nu do
          if known[unknown[j]] == nil then
            known[unknown[j]] = sts[j] or false
          end
        end
      end
      for j = 1, nk do
        local pol, kid = pols[j], names[j]
        -- Ended, released, or cancelled through another path: skipped.
        if get_st(id, kid) == 'w' then
          if ist == 'S' or pol == 'k' then
            local down = DOWN[id]
            if not down then
              down = {}
              DOWN[id], DOWN_KIDS[id] = down, {}
              DOWN_FLOWS[#DOWN_FLOWS + 1] = id
            end
            local c = down[kid]
            if not c then
              local list = DOWN_KIDS[id]
              list[#list + 1] = kid
              c = 0
            end
            down[kid] = c + 1
          else
            set_end(id, kid, 'c')
            nw = nw + 1
            work[nw], ends[nw] = kid, 'c'
          end
        end
      end
    end
  end
end

-- Applies the count-downs of this call's ends (see DOWN): per flow, the
-- dependants' counts read at once and written with the call's other
-- writes; a dependant left with no dependency to wait for, and still
-- waiting, is released (the jobs and dependencies of those read at once).
local function count_down()
  for a = 1, #DOWN_FLOWS do
    local id = DOWN_FLOWS[a]
    local down, names = DOWN[id], DOWN_KIDS[id]
    local nn = #names
    local lefts = hmget(k(id, ':left'), names)
    local go, ng = {}, 0
    for j = 1, nn do
      local kid = names[j]
      local left = (tonumber(lefts[j]) or 0) - down[kid]
      later(k(id, ':left'), kid, left == 0 and '0' or string.format('%d', left))
      if left <= 0 and get_st(id, kid) == 'w' then
        set_st(id, kid, 'o')
        ng = ng + 1
        go[ng] = kid
      end
    end
    if ng > 0 then
      local specs, afters = hmget(k(id, ':spec'), go), hmget(k(id, ':after'), go)
      for j = 1, ng do
        -- (A member without its job is left as release() leaves it.)
        if specs[j] then
          release(id, go[j], specs[j], afters[j] or '')
        end
      end
    end
  end
  DOWN, DOWN_KIDS, DOWN_FLOWS = {}, {}, {}
end

-- Deletes a flow's keys and index entries.
local function drop_flow(id)
  flush()
  local kind = redis.call('HGET', k(id, ''), 'kind')
  for _, part in ipairs({ '', ':st', ':left', ':after', ':kids', ':spec', ':info', ':res', ':tr', ':te', ':order' }) do
    redis.call('DEL', k(id, part))
  end
  redis.call('ZREM', F .. 'index', id)
  if kind then
    redis.call('ZREM', F .. 'index:' .. kind, id)
  end
  redis.call('ZREM', F .. 'out', id .. '\n@on_success', id .. '\n@on_complete')
end

-- Ends flow id when it is closed and every member ended: its status, its
-- callbacks released, the oldest ended flows past FLOWS_KEPT deleted (a
-- few per call).
local function check_end(id)
  if ENDED[id] then
    redis.call('HINCRBY', k(id, ''), 'ended', ENDED[id])
    ENDED[id] = nil
  end
  if OK[id] then
    redis.call('HINCRBY', k(id, ''), 'ok', OK[id])
    OK[id] = nil
  end
  local f = redis.call('HMGET', k(id, ''), 'status', 'closed', 'ended', 'total', 'ok', 'cancelled')
  if f[1] ~= 'running' or f[2] ~= '1' or tonumber(f[3]) < tonumber(f[4]) then
    return
  end
  local status = f[6] == '1' and 'cancelled' or (f[5] == f[4] and 'succeeded' or 'failed')
  redis.call('HSET', k(id, ''), 'status', status, 'ended_at', NOW)
  redis.call('ZADD', F .. 'ended', now, id)
  CHANGED = true
  for _, cb in ipairs({ '@on_success', '@on_complete' }) do
    if redis.call('HEXISTS', k(id, ':spec'), cb) == 1 then
      local fires = status == 'succeeded' or (cb == '@on_complete' and status == 'failed')
      if fires then
        set_st(id, cb, 'o')
        release(id, cb)
      else
        set_st(id, cb, 'c')
      end
    end
  end
  for _ = 1, 10 do
    if redis.call('ZCARD', F .. 'ended') <= FLOWS_KEPT then
      break
    end
    local old = redis.call('ZPOPMIN', F .. 'ended')
    drop_flow(old[1])
  end
end

-- Checks members given from ARGV[o] (n of them, 4 arguments each: name,
-- spec, info, after) before anything is written: a name used twice, or a
-- dependency on no member of the flow or on a later one. Returns an
-- error reply, or nil. `stored`: whether the flow has members stored
-- already (not a flow being created), which are looked up too.
local function check_members(id, o, n, stored)
  local names = {}
  for i = 0, n - 1 do
    local name, after = ARGV[o + i * 4], ARGV[o + i * 4 + 3]
    if names[name] or (stored and redis.call('HEXISTS', k(id, ':st'), name) == 1) then
      return { 'dup', name }
    end
    for _, dep in string.gmatch(after, '(%a):([^\n]+)') do
      if not names[dep] and not (stored and redis.call('HEXISTS', k(id, ':st'), dep) == 1) then
        return { 'unknown', name, dep }
      end
    end
    names[name] = true
  end
  return nil
end

-- Writes checked members; releases those with nothing to wait for.
local function write_members(id, o, n)
  local kids = {}
  local order = {}
  local open = {}
  for i = 0, n - 1 do
    local at = o + i * 4
    local name, spec, info, after = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
    later(k(id, ':spec'), name, spec)
    later(k(id, ':info'), name, info)
    local left, cancelled = 0, false
    if after ~= '' then
      later(k(id, ':after'), name, after)
      for pol, dep in string.gmatch(after, '(%a):([^\n]+)') do
        local list = kids[dep]
        if not list then
          list = {}
          kids[dep] = list
          open[#open + 1] = dep
        end
        list[#list + 1] = pol .. ':' .. name
        local dst = get_st(id, dep)
        if dst == 'S' or ((dst == 'd' or dst == 'x' or dst == 'c') and pol == 'k') then
          -- Ended already, in a way that lets it go on.
        elseif dst == 'd' or dst == 'x' or dst == 'c' then
          cancelled = true
        else
          left = left + 1
        end
      end
    end
    order[#order + 1] = name
    later(k(id, ':left'), name, left == 0 and '0' or string.format('%d', left))
    if cancelled then
      set_end(id, name, 'c')
    elseif left == 0 then
      set_st(id, name, 'o')
      release(id, name, spec, after)
    else
      set_st(id, name, 'w')
    end
  end
  -- Each member's dependants written once: a wide fan-out is one string.
  if #open > 0 then
    local olds = hmget(k(id, ':kids'), open)
    for j = 1, #open do
      local dep = open[j]
      local new = table.concat(kids[dep], '\n')
      later(k(id, ':kids'), dep, olds[j] and (olds[j] .. '\n' .. new) or new)
    end
  end
  for i = 1, #order, 1000 do
    redis.call('RPUSH', k(id, ':order'), unpack(order, i, math.min(i + 999, #order)))
  end
  redis.call('HINCRBY', k(id, ''), 'total', n)
end

-- The reply of a call that may release: {'ok', n, then per release its
-- flow, member, job spec, number of dependency items, and per dependency
-- its name and result ('' for none)}; publishes on `wake` when something
-- ended.
local function releases()
  flush()
  if CHANGED then
    redis.call('PUBLISH', F .. 'wake', '1')
  end
  local out, no = { 'ok', #REL }, 2
  for i = 1, #REL do
    local r = REL[i]
    local deps = r[4]
    local nd = #deps
    out[no + 1], out[no + 2], out[no + 3], out[no + 4] = r[1], r[2], r[3], nd
    no = no + 4
    for j = 1, nd do
      out[no + j] = deps[j]
    end
    no = no + nd
  end
  return out
end
