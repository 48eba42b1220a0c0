-- read_events.lua: a page of the queue's job events after a cursor (see
-- "Job events" in common.lua).
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: after, a stream entry id ('0' or '0-0': from the oldest held)
-- ARGV[2]: how many events of that entry the reader saw, when the cursor
--          is inside it ('0': all of them): the entry itself is returned
--          again (if still held) and the reader skips those
-- ARGV[3]: the most events wanted; whole entries are returned, at least
--          that many events when the stream holds them
-- Returns {missed, entries}: missed '1' when `after` is older than the
-- oldest entry held and the stream was trimmed since it was created (the
-- stream is only ever trimmed from its oldest end, by its cap): events
-- after the cursor may be gone. This can err on the safe side (the trimmed
-- entries may all have been at or before `after`), never the other way.
-- Entries as XRANGE returns them (id, {field, value, ...}), oldest first.
-- Read in one script so that the two answers describe one instant.

-- A stream id's two numbers.
local function id_parts(id)
  local a, b = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(a), tonumber(b)
end

-- How many events an entry holds (`c`; an entry of the older layout, one).
local function count_of(fields)
  if fields[1] == 'c' then
    return tonumber(fields[2]) or 1
  end
  return 1
end

local key = B .. 'events'
local after = ARGV[1]
if after == '0' then
  after = '0-0'
end
local want = tonumber(ARGV[3])
local seen = tonumber(ARGV[2]) or 0
local start = (seen > 0 and after ~= '0-0') and after or ('(' .. after)
-- Entries hold one event or many: ask for one at first, then for as many
-- as the events per entry seen so far say are still needed (each entry
-- read is copied twice here: read no more than needed).
local entries, ne, got = {}, 0, 0
local step = 1
while got < want do
  local part = redis.call('XRANGE', key, start, '+', 'COUNT', step)
  for i = 1, #part do
    ne = ne + 1
    entries[ne] = part[i]
    got = got + count_of(part[i][2])
    if part[i][1] == after then
      got = got - seen
    end
  end
  if #part < step then
    break
  end
  start = '(' .. part[#part][1]
  step = math.max(1, math.ceil((want - got) * ne / math.max(got, 1)))
end
local missed = '0'
if after ~= '0-0' then
  local oldest = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
  if oldest then
    local om, os = id_parts(oldest[1])
    local am, as = id_parts(after)
    if om and am and (om > am or (om == am and os > as)) then
      local info = redis.call('XINFO', 'STREAM', key)
      local added, length = 0, 0
      for i = 1, #info, 2 do
        if info[i] == 'entries-added' then
          added = tonumber(info[i + 1])
        elseif info[i] == 'length' then
          length = tonumber(info[i + 1])
        end
      end
      if added > length then
        missed = '1'
      end
    end
  end
end
return { missed, entries }
