-- common.lua: helpers that every script below starts with (prepended by
-- scripts.rs; never run on its own).
--
-- KEYS[1]: the queue's key prefix `<prefix>:{<queue>}:` (B below), the ONE
--          base every key name is derived from: a script names a key of its
--          queue only as B .. '<suffix>', with the suffixes of keys.rs
--          (QueueKeys), where key names are built on the Rust side; a unit
--          test there checks every `B .. '<suffix>'` of these files. So all
--          of them share the queue's hash tag and live in one Redis Cluster
--          slot.
-- KEYS[2]: on Redis Cluster only, `B .. 'fence'`, declared and never
--          touched: it makes Redis refuse the script (TRYAGAIN) while the
--          slot migrates (see conn.rs).
-- Replies: each script names its reply in its header; each is decoded once,
-- by the Rust module of the same name (scripts/<name>.rs).
--
-- A job lives in up to eleven fields, one per hash of its queue, keyed by its
-- ulid (no key per job: a hash field costs far less memory than a key):
--
--   jobs    the record, written by enqueue and changed only by a keyed
--           enqueue that replaces the job while it waits (no worker holds
--           it then; see enqueue.lua):
--           `<rank>|<max_retries>|<timeout_ms>|<enqueued_delta_ms>|<name_len>|<headers_len>|`
--           followed by the name, the headers (JSON) and the payload bytes.
--           Empty numbers mean "none"; enqueued_delta_ms is enqueued_at minus
--           the ulid's own time (empty: equal). Built by the client (decode.rs, Record::write).
--   state   `<status>|<rank>|<attempts>|<token>|<t1>|<t2>|<cancel>|<digest>`:
--           t1 is started_ms while running or succeeded, run_at_ms while
--           scheduled or retrying; t2 is finished_ms once finished; cancel
--           is '1' when a cancel was requested while running; digest names
--           the job's `uniq:` key. ABSENT for a job that is pending and was
--           never started (the common case: no write per job at enqueue).
--   log     JSON array of the ended attempts that the state cannot tell:
--           failures, lease losses and cancellations. A running or
--           succeeded attempt is the state's own (attempts, t1, t2). At
--           most LOG_MAX entries (the first and the latest); once some were
--           left out, their count comes first: `<omitted>|[..]`.
--   result  the job function's `Ok` value (JSON), when it returned one.
--   started the token of the running attempt whose handler is known to have
--           started (the worker's `start` mark, finish.lua); absent before.
--   crash   how many leases the job lost before its handler was known to
--           start (reclaim.lua): not attempts, bounded by the crash budget.
--   expires when the job expires (ms, server clock), for a job enqueued
--           with an expiry: a fetch that pops it past that time while it
--           has no attempt counted ends it 'expired' (fetch.lua). Kept
--           until the job is forgotten; retry_dead.lua drops it.
--   snooze  how many times the job snoozed (finish.lua, kind 'snooze'):
--           not attempts, bounded by the pool's max_snoozes.
--   progress the last progress a running attempt reported (progress.lua):
--           `<fraction>|<at_ms>|<attempt>|<note>`; kept when the job ends.
--   cid     the job's caller id (jobs_core::JobOptions::id), indexed by
--           the `ids` hash (caller id -> ulid) while the job is stored.
--   ckey    the job's key field `<name length>:<name><key>`
--           (JobOptions::key), indexed by the `keys` hash (key field ->
--           ulid of the job that took the key last). A key is held by a
--           job only while it waits (pending or scheduled, no attempt
--           counted): enqueue.lua checks that, so nothing else need
--           release it; both indexes let go of a job when it is forgotten.
--
-- The ready lists hold ulids; a job that has a state field is listed as
-- '+' .. ulid, so a fetch reads the state only of the jobs that have one
-- (a never-started job, the common case, costs no read of `state`).
--
-- Leases are granted per fetch call: one token T (from `seq`) for every job
-- that call took; `lease:<T>` lists their ulids, `leases` counts those of
-- them still running under T (field T), and the `leased` zset holds T by
-- expiry. A finished job only decrements the count; the last one deletes
-- the lease. Heartbeats move T's expiry; reclaim takes back the jobs of an
-- expired T that still run under T. So fetch and finish touch no sorted set
-- per job.
--
-- Every time a script stores or compares is the server's (`TIME`, read once
-- by each script that needs it: server_clock below), never a client's: hosts
-- whose clocks disagree agree on leases, due times, retention and ticks.
-- Clients send durations ('+<ms>') for what is relative to now (delays,
-- backoffs, lease lengths) and absolute times only for what a caller chose
-- (a job scheduled at a given time). Redis replicates scripts by their
-- effects, so a script that reads `TIME` may write.
--
-- Statuses are the lowercase names of jobs_core::JobStatus. The `stats` hash
-- keeps a gauge per status and priority rank for the statuses that have no
-- list of their own to count (scheduled, retrying, running, dead); every
-- status change moves them (moved) so they stay exact.

local B = KEYS[1]

-- Publishes on the queue's channel `suffix` (keys.rs, QueueKeys::wake and
-- events_wake). Partition `{<queue>~<n>~<salt>}` of a partitioned queue publishes
-- on its queue's own channel, so one subscription hears every partition,
-- added later ones too; the message is the partition's number.
local function publish(suffix)
  local queue, n = string.match(B, '^(.*)~(%d+)~%d+}:$')
  if queue then
    redis.call('PUBLISH', queue .. '}:' .. suffix, n)
  else
    redis.call('PUBLISH', B .. suffix, '0')
  end
end

-- Wakes the queue's idle fetchers; a fetcher woken by a partition it does
-- not know yet reads the partition counts again (partitions.rs).
local function wake_fetchers()
  publish('wake')
end
local JOBS = B .. 'jobs'
local STATE = B .. 'state'
local LOG = B .. 'log'
local RESULT = B .. 'result'
local CRASH = B .. 'crash'
local EXPIRES = B .. 'expires'
local SNOOZE = B .. 'snooze'
local CID = B .. 'cid'
local CKEY = B .. 'ckey'
local STARTED = B .. 'started'
local PROGRESS = B .. 'progress'
-- The value of a field that is no job's or group's ('': an id or a group key
-- is never empty), longer than Redis keeps in a listpack
-- (`hash-max-listpack-value`, 64 bytes), so that a hash holding it is a hash
-- table at any size and never deleted. A listpack (a hash of up to
-- `hash-max-listpack-entries` fields, 512 by default) is searched end to end
-- on every read and write: `started` and `grun`, which hold a field per
-- running job or group (a few hundred), cost each access that search.
local HASH_TABLE_KEEPER = 'not a job or group: this field keeps the hash a hash table (see common.lua)'
local LEASE_LOST = 'lease expired: the worker stopped responding (crashed, killed or stalled)'
-- The error of a job that lost its lease `n` times before its handler
-- started (jobs_core's MemoryQueue says the same).
local function crash_budget_error(n)
  return 'lost its lease ' .. n .. ' times before its handler started (its workers died while it waited to run): '
    .. 'out of its crash budget'
end
-- Whether status `st` is one of those kept in the `done` list until the
-- retention sweep. (Functions, not tables: a table here would be built
-- again by every call, see library.rs.)
local function is_done(st)
  return st == 'succeeded' or st == 'cancelled' or st == 'expired'
end

-- Whether status `st` has a gauge in `stats` (see above).
local function is_gauged(st)
  return st == 'running' or st == 'scheduled' or st == 'retrying' or st == 'dead'
end

-- A whole number (milliseconds, a count) as text (Lua numbers are doubles;
-- '%d' never prints an exponent), each value printed once per call: a call
-- prints the same few (its clock, its counts) again and again, and
-- string.format costs about what a small command does.
local MS = nil
local function ms(x)
  local printed = MS
  if not printed then
    printed = {}
    MS = printed
  end
  local s = printed[x]
  if not s then
    s = string.format('%d', x)
    printed[x] = s
  end
  return s
end

-- The server's clock: whole milliseconds since the epoch, and the
-- microseconds past that millisecond.
local function server_clock()
  local t = redis.call('TIME')
  local us = tonumber(t[2])
  return tonumber(t[1]) * 1000 + math.floor(us / 1000), us % 1000
end

-- Priority rank `r` (0-3, or its digit already) as its digit. (Lua
-- prints a number in a concatenation or tostring with '%.14g', which costs
-- more than most commands a script sends.)
local function digit(r)
  if type(r) == 'string' then
    return r
  end
  return string.char(48 + r)
end

-- The name of rank `r`'s ready list (`r` a number or its digit), built
-- once per call.
local READY = nil
local function ready_key(r)
  if not READY then
    READY = {}
  end
  local key = READY[r]
  if not key then
    key = B .. 'ready:' .. digit(r)
    READY[r] = key
  end
  return key
end

-- A due time argument, in milliseconds: '' is none (nil), '+<ms>' is that
-- long after `now` (the server's clock), '<ms>' an absolute time the
-- caller chose.
local function due_at(arg, now)
  if not arg or arg == '' then
    return nil
  end
  if string.byte(arg, 1) == 43 then
    return now + tonumber(string.sub(arg, 2))
  end
  return tonumber(arg)
end

-- A state string's fields: status, rank, attempts, token, t1, t2, cancel,
-- digest (all strings).
local function parse_state(s)
  return string.match(s, '^(%a+)|(%d)|(%d*)|(%d*)|(%d*)|(%d*)|(%d?)|(%x*)$')
end

-- A state string's status alone: a fraction of what parse_state costs,
-- for the loops over many jobs that need only it.
local function state_status(s)
  return string.match(s, '^%a+')
end

local function state_of(status, rank, attempts, token, t1, t2, cancel, digest)
  return status .. '|' .. rank .. '|' .. attempts .. '|' .. token .. '|' .. t1 .. '|' .. t2 .. '|' .. cancel .. '|'
    .. digest
end

-- The priority rank and max_retries ('' = none) of a record.
local function record_head(rec)
  return string.match(rec, '^(%d)|(%d*)|')
end

-- A job's state fields, with the defaults of a never-started pending job
-- when it has no state; nil when the job does not exist.
local function load_state(id)
  local s = redis.call('HGET', STATE, id)
  if s then
    return parse_state(s)
  end
  local rec = redis.call('HGET', JOBS, id)
  if not rec then
    return nil
  end
  return 'pending', string.sub(rec, 1, 1), '0', '', '', '', '', ''
end

-- HMGET of many fields, in chunks (unpack is bounded by the Lua stack).
local function hmget(key, ids)
  if #ids <= 1000 then
    return redis.call('HMGET', key, unpack(ids))
  end
  local out = {}
  for i = 1, #ids, 1000 do
    local part = redis.call('HMGET', key, unpack(ids, i, math.min(i + 999, #ids)))
    for j = 1, #part do
      out[#out + 1] = part[j]
    end
  end
  return out
end

local function hdel_many(key, ids)
  chunked('HDEL', key, ids)
end

local function zadd_many(key, items)
  chunked('ZADD', key, items)
end

local function zrem_many(key, ids)
  chunked('ZREM', key, ids)
end

local function rpush_many(key, ids)
  chunked('RPUSH', key, ids)
end

local function lpush_many(key, ids)
  chunked('LPUSH', key, ids)
end

-- Job events (jobs_core::QueueEvents). A script records them only while
-- `events:on` exists: a listener sets it (to the history cap, the most
-- entries the `events` stream keeps) with an expiry and renews it. With no
-- listener, the cost is one GET per script call. emit() buffers; the
-- events are written by flush_events() (called by flush_stats()) as ONE
-- stream entry per script call (more only past EV_CHUNK events), then one
-- message on `events:wake` wakes the readers. A reader's cursor names an
-- entry and a position inside it (events/cursor.rs).
--
-- Recording costs Redis little per event. This Redis's Lua hashes every
-- byte of every string it creates and its table.concat copies byte by
-- byte, so an entry is built with as few strings as it can: the ulids of
-- all its events joined once (table.concat, there is nothing else for a
-- list), and a short header per run of events. emit() appends the job's
-- id and attempt to two lists and notes where a run of events of one kind
-- starts; the hot paths (the enqueued, started and succeeded events of a
-- batch) list their jobs and record them at once with emit_many(), whose
-- runs point into that list. A job's name is the costly part: it is
-- written only when the caller has the job's record at hand (an enqueue, a
-- fetch; a batch's records mostly share their head, which is compared, not
-- parsed), or when the job may be forgotten before a reader looks (a
-- death). A finish does not read the record for it: its events name no
-- job, and their reader takes the name from the job's earlier events (its
-- start, moments before) or from the job's record (events/names.rs).
--
-- An entry's fields: `c` the number of events, `h` their runs, `i` their
-- ulids in order joined by ',', `n` the job names the runs use (absent
-- when none): each distinct name once, as `<len>:<name>`, numbered from 1
-- in order. A run is `<kind>|<name no>|<count>|<attempts>|<detail
-- len>|<detail>`: `count` events (the next ones of `i`) of one kind, one
-- name (no number: none) and one detail (empty length: none; an event with
-- a detail is a run of its own), their attempts joined by ',' or, when
-- they agree, `*<attempt>` once. Entries of the earlier layouts (runs with
-- their ulids in an `e` field; one event with fields `k`, `j`, `n`, `a`,
-- `d`) are still read.
local EV_CAP = nil -- nil: not looked up yet; false: no one listens
-- The most events one entry holds: a reader that stops inside an entry
-- reads it again from its start, so entries stay small enough for that.
local EV_CHUNK = 256
-- This call's events: the ulids and attempts of those of emit(), at their
-- place in the call's order, and the runs, each { first event, kind, name
-- no, detail, the attempt all its events share (false once they differ),
-- and for a run of emit_many() the list holding its ulids, where they
-- start in it, and its attempts joined when they differ }; ev_run is the
-- run the next event of emit() may join (none after a detail's or
-- emit_many()'s). The tables are made by listening() when someone listens
-- (most calls record no event).
local EV_IDS, EV_ATTS, nev = nil, nil, 0
local EV_RUNS, nruns, ev_run = nil, 0, nil
-- This call's job names: name -> number, and their `n` field parts.
local EV_NAMES, EV_NN, EV_NPARTS = nil, 0, nil

local function listening()
  if EV_CAP == nil then
    EV_CAP = tonumber(redis.call('GET', B .. 'events:on')) or false
    if EV_CAP then
      EV_IDS, EV_ATTS, EV_RUNS, EV_NAMES, EV_NPARTS = {}, {}, {}, {}, {}
    end
  end
  return EV_CAP
end

local find = string.find

-- The head (up to the end of the name) of the last record name_of()
-- parsed, and that name: records of one batch mostly share their head, and
-- comparing it costs a fraction of parsing it.
local NAME_HEAD, NAME_LAST = nil, nil

-- The job name inside record `rec` of job `id` (read when not given); ''
-- when there is none. Second, the record's head when it parsed (nil when
-- it did not).
local function name_of(id, rec)
  rec = rec or redis.call('HGET', JOBS, id)
  if not rec then
    return ''
  end
  -- The same head parses to the same fields, hence the same name. (It is
  -- compared with a plain find anchored at the record's start: no string
  -- is made; a head that differs may be searched for through the record,
  -- which costs a fraction of what the record cost to read.)
  if NAME_HEAD and find(rec, NAME_HEAD, 1, true) == 1 then
    return NAME_LAST, NAME_HEAD
  end
  local len, at = string.match(rec, '^%d|%d*|%d*|%-?%d*|(%d+)|%d*|()')
  if not len then
    return ''
  end
  local stop = at + tonumber(len) - 1
  NAME_HEAD, NAME_LAST = string.sub(rec, 1, stop), string.sub(rec, at, stop)
  return NAME_LAST, NAME_HEAD
end

-- The number of job name `name` in this call's entry (numbered on first
-- use).
local function name_number(name)
  local no = EV_NAMES[name]
  if not no then
    EV_NN = EV_NN + 1
    no = tostring(EV_NN)
    EV_NAMES[name] = no
    EV_NPARTS[EV_NN] = #name .. ':' .. name
  end
  return no
end

-- Records event `kind` of job `id` at `attempt` (text or number), with an
-- optional detail, and the job's name when the caller passes the job's
-- record `rec` (see above for when to).
local function emit(kind, id, attempt, detail, rec)
  if not EV_CAP then
    if EV_CAP ~= nil or not listening() then
      return
    end
  end
  local no = rec and name_number((name_of(id, rec))) or ''
  local n = nev + 1
  nev = n
  EV_IDS[n] = id
  EV_ATTS[n] = attempt
  local run = ev_run
  -- A new run: another kind or name, a detail (each its own run), or the
  -- first event of a new entry.
  if run and run[2] == kind and run[3] == no and not detail and n % EV_CHUNK ~= 1 then
    if run[5] ~= attempt then
      run[5] = false
    end
  else
    nruns = nruns + 1
    run = { n, kind, no, detail, attempt }
    EV_RUNS[nruns] = run
    ev_run = (not detail) and run or nil
  end
end

-- Notes attempt `attempt` of the n-th job of a batch in `atts`, the
-- batch's attempts for emit_many(): nil while every one so far is '1' (the
-- common batch lists nothing). Returns the list.
local function note_attempt(atts, n, attempt)
  if not atts then
    if attempt == '1' then
      return nil
    end
    atts = {}
    for k = 1, n - 1 do
      atts[k] = '1'
    end
  end
  atts[n] = attempt
  return atts
end

-- Records event `kind` (no detail) of `count` jobs: the k-th (k from 1)
-- is ids[i0 + k], at attempt atts[k] (`atts` a table) or `atts` (the
-- attempt of all), named from its record recs[r0 + step * k] when `recs`
-- is given, else all named `name` (the caller knows it) or none. The
-- same events as emit() for each in turn, at a fraction of the cost: a
-- run per stretch of one name, pointing into `ids` (which must not change
-- until the call's end), its attempts written once when they agree; the
-- offsets let a caller hand over lists it keeps anyway. The caller lists
-- the jobs only while listening().
local function emit_many(kind, count, ids, i0, atts, recs, r0, step, name)
  if count == 0 or not listening() then
    return
  end
  local each = type(atts) == 'table'
  local all_no = name and name_number(name) or ''
  local i = 1
  while i <= count do
    local no, head = all_no, nil
    if recs then
      local job_name
      job_name, head = name_of(ids[i0 + i], recs[r0 + step * i])
      no = name_number(job_name)
    end
    -- The run ends at the entry's bound, or before a job of another name
    -- (a record whose head did not parse is a run of its own).
    local stop = math.min(count, i + EV_CHUNK - nev % EV_CHUNK - 1)
    local j = stop
    if recs then
      j = i
      if head then
        while j < stop and find(recs[r0 + step * (j + 1)], head, 1, true) == 1 do
          j = j + 1
        end
      end
    end
    local first, same = atts, true
    if each then
      first = atts[i]
      for k = i + 1, j do
        if atts[k] ~= first then
          same = false
          break
        end
      end
    end
    nruns = nruns + 1
    EV_RUNS[nruns] = { nev + 1, kind, no, nil, same and first, ids, i0 + i, (not same) and table.concat(atts, ',', i, j) or nil }
    nev = nev + j - i + 1
    ev_run = nil
    i = j + 1
  end
end

-- Writes the entry of runs EV_RUNS[r1..r2], whose events end at `last`.
local function write_entry(r1, r2, last)
  local heads, ids = {}, {}
  for r = r1, r2 do
    local run = EV_RUNS[r]
    local from = run[1]
    local upto = (r < r2) and (EV_RUNS[r + 1][1] - 1) or last
    local detail = run[4]
    local atts = run[5] and ('*' .. run[5]) or run[8] or table.concat(EV_ATTS, ',', from, upto)
    heads[r - r1 + 1] = run[2] .. '|' .. run[3] .. '|' .. (upto - from + 1) .. '|' .. atts
      .. (detail and ('|' .. #detail .. '|' .. detail) or '||')
    if run[6] then
      ids[r - r1 + 1] = table.concat(run[6], ',', run[7], run[7] + upto - from)
    else
      ids[r - r1 + 1] = table.concat(EV_IDS, ',', from, upto)
    end
  end
  local count = last - EV_RUNS[r1][1] + 1
  local h, i = heads[1], ids[1]
  if r2 > r1 then
    h, i = table.concat(heads), table.concat(ids, ',')
  end
  if EV_NN > 0 then
    redis.call('XADD', B .. 'events', 'MAXLEN', '~', EV_CAP, '*', 'c', count, 'h', h, 'i', i, 'n', table.concat(EV_NPARTS))
  else
    redis.call('XADD', B .. 'events', 'MAXLEN', '~', EV_CAP, '*', 'c', count, 'h', h, 'i', i)
  end
end

local function flush_events()
  if nev == 0 then
    return
  end
  local r1 = 1
  for r = 1, nruns do
    local last = (r < nruns) and (EV_RUNS[r + 1][1] - 1) or nev
    -- An entry ends with the run that reaches its last event.
    if last % EV_CHUNK == 0 or last == nev then
      write_entry(r1, r, last)
      r1 = r + 1
    end
  end
  EV_IDS, EV_ATTS, nev, EV_RUNS, nruns, ev_run = {}, {}, 0, {}, 0, nil
  EV_NAMES, EV_NN, EV_NPARTS = {}, 0, {}
  publish('events:wake')
end

-- Counter and gauge changes are added up here and written by flush_stats(),
-- one HINCRBY per field touched rather than per job. Every script calls
-- flush_stats() before it returns, once it has written anything.
local STATS = {}

local function count(field, delta)
  STATS[field] = (STATS[field] or 0) + delta
end

local function gauge(rank, status, delta)
  if is_gauged(status) then
    count(status .. ':' .. rank, delta)
  end
end

-- Ended attempts of this script for the per-minute history.
local ENDED = { processed = 0, failed = 0 }

-- Counts `n` ended attempts: `processed` or `failed`, per rank and per minute.
local function ended_attempt(kind, rank, n)
  n = n or 1
  count(kind .. ':' .. rank, n)
  ENDED[kind] = ENDED[kind] + n
end

-- Writes the counters and gauges. `now` (ms) dates ended attempts in the
-- history: hash `minute:<unix seconds of the minute>` with `processed` and
-- `failed`, expiring after 25 hours (the history reaches back 24).
local function flush_stats(now)
  flush_events()
  for field, delta in pairs(STATS) do
    if delta ~= 0 then
      redis.call('HINCRBY', B .. 'stats', field, ms(delta))
    end
  end
  STATS = {}
  if now and (ENDED.processed > 0 or ENDED.failed > 0) then
    local mk = B .. 'minute:' .. ms(math.floor(tonumber(now) / 60000) * 60)
    local created = false
    for kind, n in pairs(ENDED) do
      -- A count that comes back as `n` was created by this call, and the
      -- hash with it, maybe: its expiry is set then (counts only grow).
      if n > 0 and redis.call('HINCRBY', mk, kind, ms(n)) == n then
        created = true
      end
    end
    if created then
      redis.call('EXPIRE', mk, '90000')
    end
    ENDED = { processed = 0, failed = 0 }
  end
end

-- Moves the gauges for a status change (the caller writes the status).
local function moved(rank, old, new)
  if old ~= new then
    gauge(rank, old, -1)
    gauge(rank, new, 1)
  end
end

-- Appends one ended attempt to the job's `log` ({attempt, started_ms,
-- finished_ms, error}; `err` nil for none; with `snoozed_ms` when the run
-- snoozed), dropping the oldest entries but the first past LOG_MAX.
local function log_attempt(id, attempt, started_ms, now, err, snoozed_ms)
  -- The most entries a job's `log` keeps (jobs_core::ATTEMPT_LOG_MAX): the
  -- first attempt and the most recent ones. Those left out between them
  -- are counted in the field itself, as a prefix `<omitted>|` before the
  -- array. (Locals of this function, not of the file: the library's main
  -- function has room for 200, see library.rs.)
  local LOG_MAX = 50
  -- Where one entry ends and the next starts. It occurs nowhere else:
  -- every entry starts with `{"attempt":`, and a quote inside an error is
  -- escaped.
  local LOG_SEP = '},{"attempt":'
  local entry = '{"attempt":' .. (attempt ~= '' and attempt or '0') .. ',"started_ms":'
    .. (started_ms ~= '' and started_ms or now) .. ',"finished_ms":' .. now .. ',"error":'
    .. (err and cjson.encode(err) or 'null') .. (snoozed_ms and (',"snoozed_ms":' .. snoozed_ms) or '') .. '}'
  local log = redis.call('HGET', LOG, id)
  local omitted = 0
  if log then
    local n, body = string.match(log, '^(%d+)|()')
    if n then
      omitted = tonumber(n)
      log = string.sub(log, body)
    end
  end
  if not log or log == '' or log == '[]' or log == '{}' then
    log = '[' .. entry .. ']'
  else
    log = string.sub(log, 1, -2) .. ',' .. entry .. ']'
    local seps, pos = {}, 1
    while true do
      local at = string.find(log, LOG_SEP, pos, true)
      if not at then
        break
      end
      seps[#seps + 1] = at
      pos = at + 1
    end
    local cut = #seps + 1 - LOG_MAX
    if cut > 0 then
      -- Keeps `[` and the first entry, then from the separator before the
      -- first entry kept.
      log = string.sub(log, 1, seps[1]) .. string.sub(log, seps[1 + cut] + 1)
      omitted = omitted + cut
    end
  end
  if omitted > 0 then
    log = ms(omitted) .. '|' .. log
  end
  redis.call('HSET', LOG, id, log)
end

-- Deletes the deduplication key `digest` when it still names job `id`.
local function drop_digest(digest, id)
  if digest and digest ~= '' then
    local uk = B .. 'uniq:' .. digest
    if redis.call('GET', uk) == id then
      redis.call('DEL', uk)
    end
  end
end

-- Workflow steps and batch jobs (jobs_core::FlowStore): `flow` maps such a
-- job's ulid to `<flow id> <member>` (enqueue.lua); its end is recorded in
-- the `flowout` sorted set (ulid -> when a relay may take it) in the same
-- step as the end, for a relay to apply to its flow (flow_take.lua). A
-- queue without such jobs pays one EXISTS per script call that ends or
-- forgets jobs.
local FLOW_ON = nil
local function has_flow_jobs()
  if FLOW_ON == nil then
    FLOW_ON = redis.call('EXISTS', B .. 'flow') == 1
  end
  return FLOW_ON
end

-- Records the ends of jobs ids[1..n] (ended at `now`, ms, a number or its
-- text) that are flow members: one read of `flow` and one write of
-- `flowout` for the lot.
local function flow_ended(ids, n, now)
  if n == 0 or not has_flow_jobs() then
    return
  end
  local refs = hmget(B .. 'flow', ids)
  local out, no, score = {}, 0, ms(now)
  for i = 1, n do
    if refs[i] then
      out[no + 1], out[no + 2] = score, ids[i]
      no = no + 2
    end
  end
  zadd_many(B .. 'flowout', out)
end

-- Deletes the fields of these jobs from the job hashes, and their caller
-- ids and keys from the indexes where they still name them.
local function forget(ids)
  for _, ix in ipairs({ { CID, B .. 'ids' }, { CKEY, B .. 'keys' } }) do
    if redis.call('EXISTS', ix[1]) == 1 then
      -- Each job's caller id (or key), then who holds it now: read at once.
      local held = hmget(ix[1], ids)
      local names, of, n = {}, {}, 0
      for i = 1, #ids do
        if held[i] then
          n = n + 1
          names[n], of[n] = held[i], ids[i]
        end
      end
      if n > 0 then
        local owners = hmget(ix[2], names)
        local gone, ng = {}, 0
        for j = 1, n do
          if owners[j] == of[j] then
            ng = ng + 1
            gone[ng] = names[j]
          end
        end
        hdel_many(ix[2], gone)
      end
    end
  end
  hdel_many(JOBS, ids)
  hdel_many(STATE, ids)
  -- The others exist only once some job needed them (a failure logged, a
  -- result kept, ..): an HDEL of a hash that is not there would still
  -- convert every id, and a queue past its retention forgets as many jobs
  -- in each fetch as it leases.
  for _, h in ipairs({ LOG, RESULT, CRASH, STARTED, EXPIRES, SNOOZE, CID, CKEY, PROGRESS, B .. 'group' }) do
    if redis.call('EXISTS', h) == 1 then
      hdel_many(h, ids)
    end
  end
  if has_flow_jobs() then
    hdel_many(B .. 'flow', ids)
  end
end

-- Succeeded, cancelled or expired: kept in the `done` list (newest first) until the
-- retention sweep; its deduplication key (it never runs again) dropped.
local function finish_record(id, status, rank, old, attempts, token, t1, digest, now)
  redis.call('HSET', STATE, id, state_of(status, rank, attempts, token, t1, now, '', ''))
  moved(rank, old, status)
  redis.call('LPUSH', B .. 'done', id)
  drop_digest(digest, id)
  flow_ended({ id }, 1, now)
end

-- How a job with a state field is listed in a ready list.
local function listed(id)
  return '+' .. id
end

-- Deletes lease T (its list, count and expiry).
local function drop_lease(token)
  redis.call('DEL', B .. 'lease:' .. token)
  redis.call('HDEL', B .. 'leases', token)
  redis.call('ZREM', B .. 'leased', token)
end

-- Counts `n` jobs of lease T as no longer running under it; the last one
-- deletes the lease.
local function leave_lease(token, n)
  if redis.call('HINCRBY', B .. 'leases', token, ms(-n)) <= 0 then
    drop_lease(token)
  end
end

-- Moves a job to the dead-letter set (its digest kept: a retried dead job
-- is live again), scored by its time of death: `score` when given (finer
-- than the millisecond, so that jobs dying in turn keep their order), else
-- `now`.
local function to_dead(id, rank, old, attempts, token, t1, digest, now, score)
  redis.call('HSET', STATE, id, state_of('dead', rank, attempts, token, t1, now, '', digest))
  moved(rank, old, 'dead')
  redis.call('ZADD', B .. 'dead', (score and score ~= '') and score or now, id)
  flow_ended({ id }, 1, now)
end

-- Deletes dead jobs (already taken out of the `dead` zset).
local function forget_dead(ids)
  if #ids == 0 then
    return
  end
  local states = hmget(STATE, ids)
  for i, id in ipairs(ids) do
    if states[i] then
      local st, rank, _, _, _, _, _, digest = parse_state(states[i])
      if st == 'dead' then
        gauge(rank, 'dead', -1)
      end
      drop_digest(digest, id)
    end
  end
  forget(ids)
end

-- The queue's retention (meta hash: r_done_ms, r_done_max, r_dead_ms,
-- r_dead_max, each '' or absent for the backend's, given as arguments), and
-- whether it archives (`archive` = '1', kept in ARCHIVING for archive()
-- and archive_room()). A caller reads RETENTION_FIELDS with its own HMGET
-- of meta, after its other fields, and passes the reply `m` and where
-- they start in it (`at`). Returns keep_done_ms, done_max, dead_age_ms,
-- dead_max.
local ARCHIVING = false
-- Entries archive() appended in this call (fetch.lua reports them).
local ARCHIVED = 0
-- The meta fields retention_of reads, in its order (a function, not a
-- table: see is_done).
local function retention_fields()
  return 'r_done_ms', 'r_done_max', 'r_dead_ms', 'r_dead_max', 'archive'
end
local function retention_of(m, at, keep_done_ms, done_max, dead_age_ms, dead_max)
  ARCHIVING = m[at + 4] == '1'
  return tonumber(m[at]) or keep_done_ms, tonumber(m[at + 1]) or done_max, tonumber(m[at + 2]) or dead_age_ms,
    tonumber(m[at + 3]) or dead_max
end

-- How many records the retention may delete now, at most `limit`: all of
-- them unless the queue archives, then as many as its backlog (the
-- `archive` stream, at most ARCHIVE_MAX entries, a constant scripts.rs
-- prepends from jobs_core::ARCHIVE_BACKLOG_MAX) has room for.
local function archive_room(limit)
  if not ARCHIVING then
    return limit
  end
  return math.max(0, math.min(limit, ARCHIVE_MAX - redis.call('XLEN', B .. 'archive')))
end

-- Appends these jobs, about to be deleted by the retention, to the archive
-- backlog when the queue archives: one entry each, in order, at the next
-- position of the meta hash's `archive_seq` (entry id `<position>-0`),
-- holding every field read.lua reads (r record, s state, l log, o result,
-- n snoozes, e expiry, c caller id, k key, g group, p progress), the job's
-- ulid (`id`), the time (`at`, ms) and the backlog's name (`b`, given at
-- its first entry).
local function archive(ids, now)
  if not ARCHIVING or #ids == 0 then
    return
  end
  local parts = {
    hmget(JOBS, ids), hmget(STATE, ids), hmget(LOG, ids), hmget(RESULT, ids), hmget(SNOOZE, ids),
    hmget(EXPIRES, ids), hmget(CID, ids), hmget(CKEY, ids), hmget(B .. 'group', ids), hmget(PROGRESS, ids),
  }
  local names = { 'r', 's', 'l', 'o', 'n', 'e', 'c', 'k', 'g', 'p' }
  local name = redis.call('HGET', B .. 'meta', 'archive_name')
  if not name then
    name = ms(now)
    redis.call('HSET', B .. 'meta', 'archive_name', name)
  end
  for i, id in ipairs(ids) do
    if parts[1][i] then
      local seq = redis.call('HINCRBY', B .. 'meta', 'archive_seq', 1)
      local entry, n = { 'id', id, 'at', ms(now), 'b', name }, 6
      for p = 1, #parts do
        if parts[p][i] then
          entry[n + 1], entry[n + 2] = names[p], parts[p][i]
          n = n + 2
        end
      end
      redis.call('XADD', B .. 'archive', seq .. '-0', unpack(entry))
      ARCHIVED = ARCHIVED + 1
    end
  end
end

-- Drops the oldest dead jobs past `dead_max`, at most `limit` per call (and
-- no more than the archive backlog has room for), archived first.
local function trim_dead(dead_max, limit, now)
  local over = redis.call('ZCARD', B .. 'dead') - dead_max
  local n = over > 0 and archive_room(math.min(over, limit)) or 0
  if n <= 0 then
    return
  end
  local popped = redis.call('ZPOPMIN', B .. 'dead', n)
  local ids = {}
  for i = 1, #popped, 2 do
    ids[#ids + 1] = popped[i]
  end
  archive(ids, now)
  forget_dead(ids)
end
