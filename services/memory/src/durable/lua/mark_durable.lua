-- Records that revision ARGV[4] of generation ARGV[3] is in PostgreSQL.
local s = read_state(KEYS[1])
if s and s.gen == tonumber(ARGV[3]) and s.drev < tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'drev', ARGV[4])
end
return { 'DONE' }
