-- Run by a loader holding the key's PostgreSQL row lock, with the row's
-- committed generation ARGV[4] and state: ARGV[5] rev, ARGV[6] value ('' =
-- none), ARGV[7] created, ARGV[8] updated, ARGV[9] expiry (0 = none).
--   ACTIVE      Redis already holds this generation, usable: nothing to do.
--   ACTIVATED   a load of this generation committed but did not activate its
--               state (it is the row's state exactly): activated here.
--   INSTALLED   anything else (absent, another incarnation's, an older or
--               rolled-back generation): the row's state is installed as
--               generation ARGV[4] + 1, pending until the loader commits that
--               generation and activates it.
local gen, rev = tonumber(ARGV[4]), tonumber(ARGV[5])
local s = read_state(KEYS[1])
if s and s.i == ARGV[3] and s.gen == gen then
  if not s.p and s.rev >= rev then
    return { 'ACTIVE' }
  end
  if s.p and s.rev == rev then
    redis.call('HDEL', KEYS[1], 'p')
    return { 'ACTIVATED' }
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'rev', ARGV[5], 'gen', int(gen + 1), 'drev', ARGV[5],
  'c', ARGV[7], 'u', ARGV[8], 'x', ARGV[9], 'i', ARGV[3], 'p', '1')
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[6])
  if ARGV[9] ~= '0' then
    redis.call('ZADD', KEYS[3], tonumber(ARGV[9]), ARGV[1])
  end
end
return { 'INSTALLED' }
