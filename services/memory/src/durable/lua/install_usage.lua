-- ARGV[4] live keys, ARGV[5] bytes, counted in PostgreSQL; ARGV[6] seconds
-- until the next recount (bounds the drift from keys that expire unseen).
-- Totals of another incarnation are replaced.
if redis.call('HGET', KEYS[2], 'i') ~= ARGV[3] then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'keys', ARGV[4], 'bytes', ARGV[5], 'i', ARGV[3])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[6]))
end
return { 'DONE' }
