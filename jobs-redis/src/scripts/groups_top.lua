-- groups_top.lua: the busiest groups of one queue (QueueInspect::groups).
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: limit, the most groups to list (at least 1).
-- `gwait` scores each group no lower than its pending jobs (groups.lua):
-- the scores of the groups read here are set to their exact counts from
-- `gpend` (a group with none leaves the set), until the top of the set
-- holds only exact scores. Then no group below it can have more pending
-- jobs than the last one read, and the first `limit` read are the busiest.
-- Each pass reads twice as many as the one before, and the corrections
-- stay, so a later call reads fewer; a call reads at most READ_MAX
-- entries (then the groups read so far are listed, by their exact counts).
-- Returns {group_concurrency, group_rate} (the queue's overrides from its
-- meta hash, '' for none), then {key, pending, running, bounds} per group,
-- busiest first (ties: the greater key first, as ZREVRANGE orders them);
-- running is grun's count ('' for none) and bounds is gbound's value (''
-- for none).
local READ_MAX = 5000
local limit = tonumber(ARGV[1])
local window = limit + 16
local read = 0
has_groups()
local top = {}
while true do
  local page = redis.call('ZREVRANGE', GWAIT, 0, window - 1, 'WITHSCORES')
  local names = {}
  for i = 1, #page, 2 do
    names[#names + 1] = page[i]
  end
  if #names == 0 then
    top = {}
    break
  end
  local exact = hmget(GPEND, names)
  local stale = false
  top = {}
  for i, g in ipairs(names) do
    local n = tonumber(exact[i]) or 0
    if n ~= tonumber(page[2 * i]) then
      stale = true
      if n > 0 then
        redis.call('ZADD', GWAIT, n, g)
      else
        redis.call('ZREM', GWAIT, g)
      end
    end
    if n > 0 then
      top[#top + 1] = { g, n }
    end
  end
  read = read + #names
  if not stale or #names < window or read >= READ_MAX then
    break
  end
  window = math.min(2 * window, READ_MAX - read)
end
table.sort(top, function(a, b)
  if a[2] ~= b[2] then
    return a[2] > b[2]
  end
  return a[1] > b[1]
end)
local over = redis.call('HMGET', B .. 'meta', 'group_concurrency', 'group_rate')
local out = { over[1] or '', over[2] or '' }
local n = math.min(limit, #top)
if n == 0 then
  return out
end
local names = {}
for i = 1, n do
  names[i] = top[i][1]
end
local running = hmget(B .. 'grun', names)
local bounds = hmget(B .. 'gbound', names)
for i = 1, n do
  out[#out + 1] = names[i]
  out[#out + 1] = ms(top[i][2])
  out[#out + 1] = running[i] or ''
  out[#out + 1] = bounds[i] or ''
end
return out
