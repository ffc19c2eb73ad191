-- One GCRA step on one cell, atomically. Times are integer microseconds of
-- the Redis clock (TIME), so the replicas' clocks do not matter.
-- KEYS[1]: the cell, holding its theoretical arrival time (TAT).
-- ARGV[1]: the emission interval T; ARGV[2]: the tolerance T * (burst - 1).
-- Returns {1, remaining} when the request is counted, or {0, wait} (the
-- microseconds until one more request conforms) when it is not; a refused
-- request leaves the cell as it was.
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
local earliest = tat - tau
if now < earliest then
  return {0, earliest - now}
end
local next_tat = math.max(tat, now) + t
-- '%.0f': the default number format would round a 16-digit time.
-- The cell is full again (as if fresh) at next_tat: it can vanish then.
redis.call('SET', KEYS[1], string.format('%.0f', next_tat),
  'PX', math.ceil((next_tat - now) / 1000))
return {1, math.floor((now + tau + t - next_tat) / t)}
