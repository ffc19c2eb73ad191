-- Records that states are in PostgreSQL. KEYS: entry hashes of one namespace
-- (one hash tag, so one cluster slot); ARGV[1] the incarnation, then per key
-- its generation and revision. A key of another incarnation or generation,
-- or already marked that far, is left alone. Standalone: no prelude layout.
for i, k in ipairs(KEYS) do
  local f = redis.call('HMGET', k, 'gen', 'drev', 'i')
  local gen, rev = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  if f[3] == ARGV[1] and tonumber(f[1]) == gen and (tonumber(f[2]) or 0) < rev then
    redis.call('HSET', k, 'drev', ARGV[2 * i + 1])
  end
end
return { 'DONE' }
