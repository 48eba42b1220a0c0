-- set_policy.lua: stores one queue's limits (jobs_core::QueuePolicy).
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1..8]: max_jobs, priority_levels (the ranks' digits, in the
--   policy's order), max_running, rate, group_concurrency, group_rate
--   (rates as `<starts>,<window ms>`), breaker (`<failures>,<within
--   ms>,<cooldown ms>`, see breaker.lua); '' for none.
-- ARGV[8..12]: the queue's retention (succeeded ms, succeeded max, dead
--   age ms, dead max; '' for the backend's) and archive ('1' or '').
-- ARGV[13]: group_breaker (as breaker, see groups.lua); '' for none.
-- Writes them to the queue's meta hash; no group_breaker closes every
-- group's breaker (a group held for its cool-down starts when the hold
-- ends). Groups that have running jobs
-- (so possibly at their old bound) are offered a place in the turn again,
-- at most 1000 of them (any other gets one when its next job ends); then
-- the wake channel tells waiting pools that a raised bound may let them
-- take jobs now.
-- Returns 'ok'.

redis.call('HSET', B .. 'meta', 'max_jobs', ARGV[1], 'priority_levels', ARGV[2], 'max_running', ARGV[3],
  'rate', ARGV[4], 'group_concurrency', ARGV[5], 'group_rate', ARGV[6], 'breaker', ARGV[7],
  'r_done_ms', ARGV[8], 'r_done_max', ARGV[9], 'r_dead_ms', ARGV[10], 'r_dead_max', ARGV[11], 'archive', ARGV[12],
  'group_breaker', ARGV[13])
if ARGV[13] == '' then
  redis.call('DEL', B .. 'gbrk')
end
if has_groups() then
  set_overrides(ARGV[5], ARGV[6])
  offer_running(1000)
end
wake_fetchers()
return 'ok'
