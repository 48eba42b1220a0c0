-- archive_release.lua: an archiver gives one queue up (at shutdown), so
-- that another takes it over without waiting for the lease to expire.
--
-- KEYS[1]: queue prefix (see common.lua).
-- ARGV[1]: the archiver's name; the lease is deleted only if it is its.
-- Returns 'ok'.

if redis.call('GET', B .. 'archiver') == ARGV[1] then
  redis.call('DEL', B .. 'archiver')
end
return 'ok'
