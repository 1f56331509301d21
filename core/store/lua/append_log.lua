-- Append entries to a plain log (an SMS conversation, unknown events) and
-- clear their pending marks, atomically and idempotently.
--
-- KEYS: 1 log zset, 2 records hash, 3 pending zset, 4 pending hash
-- ARGV: 1 ttl ms, 2 n entries, then n x (id, score, json), then n done, then fields
-- Returns the number of entries that were new (or moved earlier).
local i = 3
local changed = 0
for _ = 1, tonumber(ARGV[2]) do
  -- Keep the score as the caller's string: Lua numbers print with 14 digits,
  -- too few for microseconds since the epoch.
  local id, score, record = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  local current = redis.call('ZSCORE', KEYS[1], id)
  if (not current) or tonumber(score) < tonumber(current) then
    redis.call('ZADD', KEYS[1], score, id)
    redis.call('HSET', KEYS[2], id, record)
    changed = changed + 1
  end
end
local done = tonumber(ARGV[i])
for k = 1, done do
  redis.call('ZREM', KEYS[3], ARGV[i + k])
  redis.call('HDEL', KEYS[4], ARGV[i + k])
end
if changed > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return changed
