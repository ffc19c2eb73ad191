-- Shared by every memory script. Keys of one namespace share a hash tag.
--   KEYS[1] entry hash   tm:{ns}:e:<key>   fields v rev gen drev c u x
--   KEYS[2] usage hash   tm:{ns}:u         fields keys bytes (recomputed from
--                                          PostgreSQL when absent)
--   KEYS[3] expiry zset  tm:{ns}:x         member <key>, score expiry ms
--   KEYS[4] changes      tm:{ns}:w         stream of writes, for watches:
--                                          t p|d|b (put, delete, begin marker)
--                                          k r g i v c u x (key, revision,
--                                          generation, incarnation, state)
--   ARGV[1] the key (zset member), ARGV[2] the entry-key prefix tm:{ns}:e:,
--   ARGV[3] the incarnation of the Redis process the caller's connection
--   reaches (its run_id and replication id, read when the connection opened).
-- A state is live when v is present and x is 0 or in the future. rev is the
-- per-key revision, gen the load generation that fences PostgreSQL writes,
-- drev the highest revision known to be durable in PostgreSQL, i the
-- incarnation that installed the state, p set while the load that installed
-- it has not committed its generation in PostgreSQL yet.
-- A state is usable only when installed by this incarnation and committed:
-- a state restored from a snapshot, replicated from a lost primary, or left
-- by a load that may roll back is loaded again under a new generation.
-- Every reply is a flat array of strings: status, then the state.

local function int(n)
  return string.format('%d', n)
end

-- Changes kept per namespace (watch::LOG_LENGTH); trimming is approximate.
local CHANGE_LOG_LENGTH = 256

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function read_state(k)
  local f = redis.call('HMGET', k, 'v', 'rev', 'gen', 'drev', 'c', 'u', 'x', 'i', 'p')
  if not f[2] then
    return nil
  end
  return {
    v = f[1] or false,
    rev = tonumber(f[2]), gen = tonumber(f[3]), drev = tonumber(f[4]),
    c = tonumber(f[5]), u = tonumber(f[6]), x = tonumber(f[7]) or 0,
    i = f[8] or '', p = f[9] == '1',
  }
end

-- The state of KEYS[1] when it may be used, else nil (the caller loads).
local function usable_state()
  local s = read_state(KEYS[1])
  if s and s.i == ARGV[3] and not s.p then
    return s
  end
  return nil
end

local function is_live(s, now)
  return s.v and (s.x == 0 or s.x > now)
end

local function charged(s, member)
  return #s.v + #member
end

local function reply(status, s, now)
  return { status, s.v or '', int(s.rev), int(s.gen), int(s.drev), int(s.c), int(s.u), int(s.x), int(now) }
end

-- An expired entry stops counting against the quota and leaves the zset.
-- Its revision stays: expiry is not a write.
local function retire_expired(k, s, member, now)
  if s.v and s.x ~= 0 and s.x <= now then
    redis.call('HINCRBY', KEYS[2], 'keys', -1)
    redis.call('HINCRBY', KEYS[2], 'bytes', -charged(s, member))
    redis.call('HDEL', k, 'v')
    redis.call('HSET', k, 'x', '0')
    redis.call('ZREM', KEYS[3], member)
    s.v = false
    s.x = 0
  end
end

local function purge_expired(now)
  local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 16)
  for _, member in ipairs(due) do
    local k = ARGV[2] .. member
    local s = read_state(k)
    if s and s.i == ARGV[3] and not s.p then
      retire_expired(k, s, member, now)
    elseif not s or s.i ~= ARGV[3] then
      -- Gone, or left by another incarnation: its load re-adds it.
      redis.call('ZREM', KEYS[3], member)
    end
  end
end

-- Entry and usage must be loaded before a write; the caller loads and retries.
local function prepare_write()
  local s = usable_state()
  if not s then
    return nil, { 'LOAD' }
  end
  if redis.call('HGET', KEYS[2], 'i') ~= ARGV[3] then
    return nil, { 'USAGE' }
  end
  local now = now_ms()
  purge_expired(now)
  s = read_state(KEYS[1])
  retire_expired(KEYS[1], s, ARGV[1], now)
  return s, now
end

-- Writes `value` (false = delete) as the next revision, enforcing the quota.
-- ttl: 'keep', 'clear' or seconds.
local function commit(s, now, value, ttl, max_keys, max_bytes)
  local member = ARGV[1]
  local was_live = is_live(s, now)
  local old_keys, old_bytes = 0, 0
  if was_live then
    old_keys, old_bytes = 1, charged(s, member)
  end
  local new_keys, new_bytes = 0, 0
  if value then
    new_keys, new_bytes = 1, #value + #member
  end
  local usage = redis.call('HMGET', KEYS[2], 'keys', 'bytes')
  local keys, bytes = tonumber(usage[1]) or 0, tonumber(usage[2]) or 0
  if new_keys > old_keys and keys + new_keys - old_keys > max_keys then
    return { 'QUOTA', 'keys', int(max_keys) }
  end
  if new_bytes > old_bytes and bytes + new_bytes - old_bytes > max_bytes then
    return { 'QUOTA', 'bytes', int(max_bytes) }
  end
  redis.call('HINCRBY', KEYS[2], 'keys', new_keys - old_keys)
  redis.call('HINCRBY', KEYS[2], 'bytes', new_bytes - old_bytes)

  local x = 0
  if value then
    if ttl == 'keep' then
      if was_live then x = s.x end
    elseif ttl ~= 'clear' then
      x = now + tonumber(ttl) * 1000
    end
  end
  if not (value and was_live) then
    s.c = now
  end
  s.v = value
  s.rev = s.rev + 1
  s.u = now
  s.x = x
  if value then
    redis.call('HSET', KEYS[1], 'v', value, 'rev', int(s.rev), 'c', int(s.c), 'u', int(now), 'x', int(x))
  else
    redis.call('HDEL', KEYS[1], 'v')
    redis.call('HSET', KEYS[1], 'rev', int(s.rev), 'c', int(s.c), 'u', int(now), 'x', '0')
  end
  if x ~= 0 then
    redis.call('ZADD', KEYS[3], x, member)
  else
    redis.call('ZREM', KEYS[3], member)
  end
  local kind = 'd'
  if value then kind = 'p' end
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', CHANGE_LOG_LENGTH, '*', 't', kind, 'k', member,
    'r', int(s.rev), 'g', int(s.gen), 'i', ARGV[3], 'v', value or '', 'c', int(s.c),
    'u', int(now), 'x', int(x))
  redis.call('PUBLISH', 'tm:w', KEYS[4])
  return reply('OK', s, now)
end

-- 'ETAG' with the current revision (0 when absent) if If-Match fails.
local function check_if_match(s, now, if_match)
  if if_match == '' then
    return nil
  end
  local live = is_live(s, now)
  if not live or tonumber(if_match) ~= s.rev then
    local current = 0
    if live then current = s.rev end
    return { 'ETAG', int(current) }
  end
  return nil
end
