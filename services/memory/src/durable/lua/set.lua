-- ARGV[4] value, ARGV[5] ttl, ARGV[6] if-match revision or '', ARGV[7..8] quota
local s, now = prepare_write()
if not s then return now end
local failed = check_if_match(s, now, ARGV[6])
if failed then return failed end
return commit(s, now, ARGV[4], ARGV[5], tonumber(ARGV[7]), tonumber(ARGV[8]))
