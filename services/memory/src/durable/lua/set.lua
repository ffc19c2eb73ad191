-- ARGV[3] value, ARGV[4] ttl, ARGV[5] if-match revision or '', ARGV[6..7] quota
local s, now = prepare_write()
if not s then return now end
local failed = check_if_match(s, now, ARGV[5])
if failed then return failed end
return commit(s, now, ARGV[3], ARGV[4], tonumber(ARGV[6]), tonumber(ARGV[7]))
