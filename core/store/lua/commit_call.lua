-- Append events to a call's log and write what the log now means, atomically.
--
-- The caller folded the log it read at version ARGV[1] together with the new
-- entries; if anyone committed since, that fold is stale and we refuse
-- (optimistic concurrency), so no worker can overwrite a newer state.
-- needs: merge_log
--
-- KEYS: 1 log zset (event id -> received_at us), 2 records hash (event id -> json),
--       3 meta hash, 4 live zset, 5 timers zset, 6 pending zset, 7 pending hash
-- ARGV: 1 expected version, 2 call uuid, 3 view json, 4 live score ('' = not live),
--       5 timer due ('' = none), 6 ttl ms, 7 n entries, then n x (id, score, json),
--       then n done, then done x pending field
-- Returns {1, version, changed} or {0, current version} on conflict.
local version = tonumber(redis.call('HGET', KEYS[3], 'v') or '0')
if version ~= tonumber(ARGV[1]) then
  return {0, version}
end

local merged, i = merge_log(KEYS[1], KEYS[2], 8, tonumber(ARGV[7]))
local changed = merged > 0 and 1 or 0

local done = tonumber(ARGV[i])
for k = 1, done do
  redis.call('ZREM', KEYS[6], ARGV[i + k])
  redis.call('HDEL', KEYS[7], ARGV[i + k])
end

if changed == 1 then
  version = version + 1
  redis.call('HSET', KEYS[3], 'v', version, 'view', ARGV[3])
  if ARGV[4] ~= '' then
    redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
  else
    redis.call('ZREM', KEYS[4], ARGV[2])
  end
  if ARGV[5] ~= '' then
    redis.call('ZADD', KEYS[5], ARGV[5], ARGV[2])
  else
    redis.call('ZREM', KEYS[5], ARGV[2])
  end
  local ttl = tonumber(ARGV[6])
  for k = 1, 3 do
    redis.call('PEXPIRE', KEYS[k], ttl)
  end
end
return {1, version, changed}
