-- ARGV[4] if-match revision or ''
local s, now = prepare_write()
if not s then return now end
local failed = check_if_match(s, now, ARGV[4])
if failed then return failed end
if not is_live(s, now) then
  return reply('NOOP', s, now)
end
return commit(s, now, false, 'clear', 0, 0)
