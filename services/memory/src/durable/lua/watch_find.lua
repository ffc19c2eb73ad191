-- ARGV[4] a key, ARGV[5] a revision: the id of the newest change that made
-- that revision, searching back only through this incarnation's changes.
local rows = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', CHANGE_LOG_LENGTH * 2)
for _, row in ipairs(rows) do
  local f = {}
  local raw = row[2]
  for j = 1, #raw, 2 do
    f[raw[j]] = raw[j + 1]
  end
  if f.i ~= ARGV[3] then
    return {}
  end
  if f.t ~= 'b' and f.k == ARGV[4] and f.r == ARGV[5] then
    return { row[1] }
  end
end
return {}
