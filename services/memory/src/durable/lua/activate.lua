-- After the loader committed generation ARGV[4] (its state at revision
-- ARGV[5]): the pending state becomes usable. A no-op when a later load
-- replaced it.
local s = read_state(KEYS[1])
if s and s.p and s.i == ARGV[3] and s.gen == tonumber(ARGV[4]) and s.rev == tonumber(ARGV[5]) then
  redis.call('HDEL', KEYS[1], 'p')
end
return { 'DONE' }
