-- read_events.lua: a page of the queue's job events after a cursor (see
-- "Job events" in common.lua).
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: after, a stream id ('0' or '0-0': from the oldest held)
-- ARGV[2]: the most events to return
-- Returns {missed, entries}: missed '1' when `after` is older than the
-- oldest event held and the stream was trimmed since it was created (the
-- stream is only ever trimmed from its oldest end, by its cap): events
-- after `after` may be gone. This can err on the safe side (the trimmed
-- events may all have been at or before `after`), never the other way.
-- Entries as XRANGE returns them (id, {field, value, ...}), oldest first.
-- Read in one script so that the two answers describe one instant.

-- A stream id's two numbers.
local function id_parts(id)
  local a, b = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(a), tonumber(b)
end

local key = B .. 'events'
local after = ARGV[1]
if after == '0' then
  after = '0-0'
end
if redis.call('EXISTS', key) == 0 then
  return { '0', {} }
end
local entries = redis.call('XRANGE', key, '(' .. after, '+', 'COUNT', ARGV[2])
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
