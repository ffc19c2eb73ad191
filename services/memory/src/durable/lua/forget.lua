-- Before PostgreSQL reclaims a key's row (generation ARGV[4], revision
-- ARGV[5], deleted or expired): drops Redis's copy if it is that same dead
-- state, or another incarnation's. FORGOTTEN: nothing of the key is left
-- here; KEEP: Redis holds something newer (a write on its way), so the row
-- stays.
local s = read_state(KEYS[1])
if not s then
  return { 'FORGOTTEN' }
end
if s.i ~= ARGV[3] then
  redis.call('DEL', KEYS[1])
  return { 'FORGOTTEN' }
end
local now = now_ms()
if s.p or s.gen ~= tonumber(ARGV[4]) or s.rev ~= tonumber(ARGV[5]) or is_live(s, now) then
  return { 'KEEP' }
end
if redis.call('HGET', KEYS[2], 'i') == ARGV[3] then
  retire_expired(KEYS[1], s, ARGV[1], now)
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return { 'FORGOTTEN' }
