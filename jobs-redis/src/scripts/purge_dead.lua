-- purge_dead.lua: deletes dead jobs of one queue, a bounded batch per call.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: limit, the most jobs to delete in this call
-- Returns the number deleted (oldest first); the caller calls again until
-- it is below the limit, so Redis is never blocked by a huge set.

local popped = redis.call('ZPOPMIN', B .. 'dead', tonumber(ARGV[1]))
local ids = {}
for i = 1, #popped, 2 do
  ids[#ids + 1] = popped[i]
end
forget_dead(ids)
flush_stats()
return #ids
