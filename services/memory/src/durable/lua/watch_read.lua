-- ARGV[4] a cursor (stream id), ARGV[5] how many entries at most.
-- GAP when the cursor's entry is gone (trimmed, lost) or another
-- incarnation wrote it (Redis restarted since: what came after may be
-- lost). Else OK, then per entry after the cursor: id t k r g v c u x d,
-- d '1' when the key's hash already records that state durable (its
-- generation, and drev at or past its revision), else '0'.
local at = redis.call('XRANGE', KEYS[4], ARGV[4], ARGV[4])
if #at == 0 then
  return { 'GAP' }
end
local function fields_of(row)
  local f = {}
  local raw = row[2]
  for j = 1, #raw, 2 do
    f[raw[j]] = raw[j + 1]
  end
  return f
end
if fields_of(at[1]).i ~= ARGV[3] then
  return { 'GAP' }
end
local out = { 'OK' }
local rows = redis.call('XRANGE', KEYS[4], '(' .. ARGV[4], '+', 'COUNT', tonumber(ARGV[5]))
for _, row in ipairs(rows) do
  local f = fields_of(row)
  local durable = '0'
  if f.t ~= 'b' then
    local h = redis.call('HMGET', ARGV[2] .. f.k, 'gen', 'drev')
    if tonumber(h[1]) == tonumber(f.g) and (tonumber(h[2]) or 0) >= tonumber(f.r) then
      durable = '1'
    end
  end
  for _, value in ipairs({ row[1], f.t or '', f.k or '', f.r or '0', f.g or '0', f.v or '',
                           f.c or '0', f.u or '0', f.x or '0', durable }) do
    table.insert(out, value)
  end
end
return out
