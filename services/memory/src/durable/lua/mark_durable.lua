-- Records that revision ARGV[5] of generation ARGV[4] is in PostgreSQL.
local s = read_state(KEYS[1])
if s and s.i == ARGV[3] and s.gen == tonumber(ARGV[4]) and s.drev < tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[1], 'drev', ARGV[5])
end
return { 'DONE' }
