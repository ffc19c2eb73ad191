-- The newest change's id, if this incarnation wrote it; else a begin marker
-- is added (a position this incarnation can continue from).
local last = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)
if #last > 0 then
  local fields = last[1][2]
  for j = 1, #fields, 2 do
    if fields[j] == 'i' and fields[j + 1] == ARGV[3] then
      return { last[1][1] }
    end
  end
end
return { redis.call('XADD', KEYS[4], 'MAXLEN', '~', CHANGE_LOG_LENGTH, '*', 't', 'b', 'i', ARGV[3]) }
