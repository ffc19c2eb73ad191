-- ARGV[4] '1' when an expected value is given, ARGV[5] expected,
-- ARGV[6] '1' when a new value is given, ARGV[7] value, ARGV[8] ttl,
-- ARGV[9..10] quota. NOOP = no match; MATCH = matched, nothing to delete.
local s, now = prepare_write()
if not s then return now end
local live = is_live(s, now)
local matches
if ARGV[4] == '1' then
  matches = live and s.v == ARGV[5]
else
  matches = not live
end
if not matches then
  return reply('NOOP', s, now)
end
if ARGV[6] == '1' then
  return commit(s, now, ARGV[7], ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10]))
end
if not live then
  return reply('MATCH', s, now)
end
return commit(s, now, false, 'clear', 0, 0)
