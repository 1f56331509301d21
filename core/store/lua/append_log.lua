-- Append entries to a plain log (an SMS conversation, unknown events) and
-- clear their pending marks, atomically and idempotently.
-- needs: merge_log
--
-- KEYS: 1 log zset, 2 records hash, 3 pending zset, 4 pending hash
-- ARGV: 1 ttl ms, 2 n entries, then n x (id, score, json), then n done, then fields
-- Returns the number of entries that were new (or moved earlier).
local changed, i = merge_log(KEYS[1], KEYS[2], 3, tonumber(ARGV[2]))
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
