-- many.lua: commands over many items, shared by the queue scripts and the
-- flow store (each set's shared part starts with it).

-- Sends `cmd key item...` for the items items[from + 1..from + n] (n:
-- #items when not given; from: 0 when not given), in chunks (unpack is
-- bounded by the Lua stack); nothing for none. Chunks are even, so
-- score/member and field/value pairs stay together. Returns the sum of
-- the integer replies (HSET: the fields that were new). No closure per
-- call: a script sends a handful of these every call, most of them
-- empty. The command is named literally where a script calls it
-- elsewhere (the crate's ACL list is checked against the scripts' text,
-- and tests/acl.rs runs them all).
local function chunked(cmd, key, items, n, from)
  n = n or #items
  from = from or 0
  if n == 0 then
    return 0
  end
  if n <= 1000 then
    return redis.call(cmd, key, unpack(items, from + 1, from + n))
  end
  local sum = 0
  for i = from + 1, from + n, 1000 do
    sum = sum + redis.call(cmd, key, unpack(items, i, math.min(i + 999, from + n)))
  end
  return sum
end

-- HSET of many fields into one hash. A hash Redis creates is a listpack
-- until it holds `hash-max-listpack-entries` fields (512 by default), and
-- each field added meanwhile is found by a walk of the whole listpack; a
-- field longer than `hash-max-listpack-value` (64 by default) makes it a
-- hash table at once. So a call writing at least 128 fields first sets one
-- such field (its name, over 64 bytes, does it), and deletes it once they
-- are written. Its name starts with a byte no UTF-8 text holds, so it is
-- no job id, token, caller id, key, group key or flow member name.
-- Sets the field/value pairs items[from + 1..from + n] (as chunked);
-- returns how many fields were new.
local function hset_many(key, items, n, from)
  n = n or #items
  local wide = n >= 256 and
    '\255 not a job, caller id, key, group or member: makes this hash a hash table while one call writes many fields'
  if wide then
    redis.call('HSET', key, wide, '1')
  end
  local new = chunked('HSET', key, items, n, from)
  if wide then
    redis.call('HDEL', key, wide)
  end
  return new
end
