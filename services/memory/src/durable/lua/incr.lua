-- Integer increments only. ARGV[4] integer amount, ARGV[5] ttl, ARGV[6..7] quota.
-- Redis's HINCRBY does the exact 64-bit arithmetic and overflow check that
-- Lua's doubles cannot. A float stored value answers FLOAT (the caller
-- handles it), a non-number NAN.
local s, now = prepare_write()
if not s then return now end
local current = '0'
if is_live(s, now) then current = s.v end
if not string.match(current, '^%-?%d+$') then
  if string.match(current, '^%-?%d') then return { 'FLOAT' } end
  return { 'NAN' }
end
redis.call('HSET', KEYS[1], '_n', current)
local ok = redis.pcall('HINCRBY', KEYS[1], '_n', ARGV[4])
local sum = redis.call('HGET', KEYS[1], '_n')
redis.call('HDEL', KEYS[1], '_n')
if type(ok) == 'table' and ok.err then
  return { 'OVERFLOW' }
end
return commit(s, now, sum, ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]))
