-- Read. No mutation: expired entries are reported as they are and the caller
-- judges liveness with the returned clock.
local s = usable_state()
if not s then
  return { 'LOAD' }
end
return reply('OK', s, now_ms())
