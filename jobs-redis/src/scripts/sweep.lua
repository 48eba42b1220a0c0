-- sweep.lua: retention, part of the fetch script (defines sweep()).
--
-- KEYS[1]: queue prefix (see common.lua).
-- Arguments: now (ms), keep_done_ms (Retention::succeeded), dead_age_ms
-- (Retention::dead_age), limit (records per kind and call), done_max
-- (Retention::succeeded_max; nil: no count bound).
-- Deletes succeeded, cancelled and expired jobs (with their results) finished at
-- least keep_done_ms ago, then the oldest of them past done_max whatever
-- their age, and dead jobs that died at least dead_age_ms ago, oldest
-- first, at most `limit` per kind and call, and no more than the archive
-- backlog has room for when the queue archives (archive_room(), common.lua;
-- each deleted job is archived first). (The count bound of the dead-letter
-- set is trim_dead in common.lua.)
-- Returns nothing.

local function sweep(now, keep_done_ms, dead_age_ms, limit, done_max)
  -- `done` is newest first: the oldest are at its end. Its last entry is
  -- looked at first, alone: most sweeps stop there.
  local cutoff = now - keep_done_ms
  local function expired_at(state)
    local st, _, _, _, _, finished = parse_state(state)
    -- It may have been retried since (a dead job is not in `done`, but be
    -- safe): only finished records go, anything else leaves the list.
    if not is_done(st) then
      return false, true
    end
    return (tonumber(finished) or 0) <= cutoff, false
  end
  local room = archive_room(limit)
  local last = room > 0 and redis.call('LRANGE', B .. 'done', '-1', '-1')[1]
  local state = last and redis.call('HGET', STATE, last)
  local go, other = false, false
  if state then
    go, other = expired_at(state)
  end
  if last and (go or other or not state) then
    local tail = redis.call('LRANGE', B .. 'done', -room, -1)
    local states = hmget(STATE, tail)
    local gone, ng, k = {}, 0, 0
    for i = #tail, 1, -1 do
      if states[i] then
        local old, not_finished = expired_at(states[i])
        if not old and not not_finished then
          break
        end
        if old then
          ng = ng + 1
          gone[ng] = tail[i]
        end
      end
      k = k + 1
    end
    if k > 0 then
      redis.call('LTRIM', B .. 'done', 0, -k - 1)
      archive(gone, now)
      forget(gone)
    end
  end
  -- The count bound: the oldest past done_max go, young or not (a busy
  -- queue would otherwise keep a day of payloads and results).
  local over = done_max and (redis.call('LLEN', B .. 'done') - done_max) or 0
  local n = over > 0 and archive_room(math.min(over, limit)) or 0
  if n > 0 then
    local tail = redis.call('LRANGE', B .. 'done', -n, -1)
    redis.call('LTRIM', B .. 'done', 0, -n - 1)
    local states = hmget(STATE, tail)
    local gone, ng = {}, 0
    -- Oldest first (the list is newest first): the archive keeps that order.
    for i = #tail, 1, -1 do
      -- Only finished records go; anything else just leaves the list.
      local st = states[i] and state_status(states[i])
      if is_done(st) then
        ng = ng + 1
        gone[ng] = tail[i]
      end
    end
    archive(gone, now)
    forget(gone)
  end
  -- Scores carry fractions of a millisecond: whole milliseconds are
  -- compared, as for every other time here.
  local dead_room = archive_room(limit)
  if dead_room == 0 then
    return
  end
  local expired =
    redis.call('ZRANGEBYSCORE', B .. 'dead', '-inf', '(' .. ms(now - dead_age_ms + 1), 'LIMIT', '0', ms(dead_room))
  if #expired > 0 then
    zrem_many(B .. 'dead', expired)
    archive(expired, now)
    forget_dead(expired)
  end
end
