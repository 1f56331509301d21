-- Append events to a call's log and write what the log now means, atomically.
--
-- The caller folded the log it read at version ARGV[1] together with the new
-- entries; if anyone committed since, that fold is stale and we refuse
-- (optimistic concurrency), so no worker can overwrite a newer state.
-- Events past the call's cap (MAX_EVENTS_PER_CALL) come as "unfolded"
-- entries: kept in a log of their own, for inspection, with no new version.
-- needs: merge_log
--
-- KEYS: 1 log zset (event id -> received_at us), 2 records hash (event id -> json),
--       3 meta hash, 4 live zset, 5 timers zset, 6 pending zset, 7 pending hash,
--       8 unfolded zset, 9 unfolded records hash
-- ARGV: 1 expected version, 2 call uuid, 3 view json, 4 facts json,
--       5 live score ('' = not live), 6 timer due ('' = none), 7 ttl ms,
--       8 n entries, then n x (id, score, json),
--       then m unfolded, then m x (id, score, json), then n done, then done x pending field
-- Returns {1, version, changed, unfolded added} or {0, current version} on conflict.
local version = tonumber(redis.call('HGET', KEYS[3], 'v') or '0')
if version ~= tonumber(ARGV[1]) then
  return {0, version}
end

local merged, i = merge_log(KEYS[1], KEYS[2], 9, tonumber(ARGV[8]))
local changed = merged > 0 and 1 or 0
local unfolded
unfolded, i = merge_log(KEYS[8], KEYS[9], i + 1, tonumber(ARGV[i]))

local done = tonumber(ARGV[i])
for k = 1, done do
  redis.call('ZREM', KEYS[6], ARGV[i + k])
  redis.call('HDEL', KEYS[7], ARGV[i + k])
end

if changed == 1 then
  version = version + 1
  redis.call('HSET', KEYS[3], 'v', version, 'view', ARGV[3], 'facts', ARGV[4])
  if ARGV[5] ~= '' then
    redis.call('ZADD', KEYS[4], ARGV[5], ARGV[2])
  else
    redis.call('ZREM', KEYS[4], ARGV[2])
  end
  if ARGV[6] ~= '' then
    redis.call('ZADD', KEYS[5], ARGV[6], ARGV[2])
  else
    redis.call('ZREM', KEYS[5], ARGV[2])
  end
end
if changed == 1 or unfolded > 0 then
  local ttl = tonumber(ARGV[7])
  for _, k in ipairs({1, 2, 3, 8, 9}) do
    redis.call('PEXPIRE', KEYS[k], ttl)
  end
end
return {1, version, changed, unfolded}
