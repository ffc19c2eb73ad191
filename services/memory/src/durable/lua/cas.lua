-- ARGV[3] '1' when an expected value is given, ARGV[4] expected,
-- ARGV[5] '1' when a new value is given, ARGV[6] value, ARGV[7] ttl,
-- ARGV[8..9] quota. NOOP = no match; MATCH = matched, nothing to delete.
local s, now = prepare_write()
if not s then return now end
local live = is_live(s, now)
local matches
if ARGV[3] == '1' then
  matches = live and s.v == ARGV[4]
else
  matches = not live
end
if not matches then
  return reply('NOOP', s, now)
end
if ARGV[5] == '1' then
  return commit(s, now, ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9]))
end
if not live then
  return reply('MATCH', s, now)
end
return commit(s, now, false, 'clear', 0, 0)
