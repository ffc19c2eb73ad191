-- Drops a state whose generation PostgreSQL has fenced off (ARGV[3]), so the
-- next call reloads the durable state.
local held = redis.call('HGET', KEYS[1], 'gen')
if held and tonumber(held) <= tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
end
return { 'DONE' }
