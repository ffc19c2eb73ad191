-- ARGV[3] live keys, ARGV[4] bytes, counted in PostgreSQL; ARGV[5] seconds
-- until the next recount (bounds the drift from keys that expire unseen).
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], 'keys', ARGV[3], 'bytes', ARGV[4])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
end
return { 'DONE' }
