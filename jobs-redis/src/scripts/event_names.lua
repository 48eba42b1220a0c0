-- event_names.lua: the job names of events whose stream entry names none
-- (see "Job events" in common.lua), read from the jobs' records.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV: ulids
-- Returns each job's name, in order; '' for a job no longer stored.

local out = {}
for i = 1, #ARGV do
  out[i] = name_of(ARGV[i])
end
return out
