-- Read. No mutation: expired entries are reported as they are and the caller
-- judges liveness with the returned clock.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return { 'LOAD' }
end
return reply('OK', read_state(KEYS[1]), now_ms())
