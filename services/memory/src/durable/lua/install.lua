-- Installs a state loaded from PostgreSQL unless Redis already holds the
-- same or a newer load generation. ARGV[3] value ('' = none), ARGV[4] rev,
-- ARGV[5] gen, ARGV[6] created, ARGV[7] updated, ARGV[8] expiry (0 = none).
local held = redis.call('HGET', KEYS[1], 'gen')
if held and tonumber(held) >= tonumber(ARGV[5]) then
  return { 'SKIP' }
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'rev', ARGV[4], 'gen', ARGV[5], 'drev', ARGV[4],
  'c', ARGV[6], 'u', ARGV[7], 'x', ARGV[8])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[3])
  if ARGV[8] ~= '0' then
    redis.call('ZADD', KEYS[3], tonumber(ARGV[8]), ARGV[1])
  end
end
return { 'DONE' }
