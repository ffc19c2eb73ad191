-- Drops a state whose generation PostgreSQL has fenced off (ARGV[4]), so the
-- next call reloads the durable state.
local held = redis.call('HGET', KEYS[1], 'gen')
if held and tonumber(held) <= tonumber(ARGV[4]) then
  redis.call('DEL', KEYS[1])
end
return { 'DONE' }
