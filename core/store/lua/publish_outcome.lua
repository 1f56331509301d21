-- Publish a call's outcome if it differs from the last one published.
--
-- The stream is trimmed exactly by age (MINID without ~): approximate trimming
-- keeps whole macro nodes, so old records could outlive the retention.
--
-- KEYS: 1 meta hash, 2 timers zset, 3 outcomes stream
-- ARGV: 1 expected version, 2 call uuid, 3 outcome body json (no id/revision),
--       4 claimed timer score ('' = none), 5 stream retention us, 6 ttl ms
-- Returns {0} if the call changed since it was read (its commit re-armed the
-- timer), {2, revision} if the outcome is unchanged, {1, revision, id} if published.
local version = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if version ~= tonumber(ARGV[1]) then
  return {0}
end

local function release_timer()
  if ARGV[4] ~= '' then
    local score = redis.call('ZSCORE', KEYS[2], ARGV[2])
    if score and tonumber(score) == tonumber(ARGV[4]) then
      redis.call('ZREM', KEYS[2], ARGV[2])
    end
  end
end

if redis.call('HGET', KEYS[1], 'outcome_body') == ARGV[3] then
  release_timer()
  return {2, tonumber(redis.call('HGET', KEYS[1], 'revision') or '0')}
end

-- Record ids are server microseconds, so ids of every tenant's stream on this
-- Redis increase together: a reader merging tenants can resume from one id.
local now = redis.call('TIME')
local us = tonumber(now[1]) * 1000000 + tonumber(now[2])
-- string.format: plain concatenation would print 1.7e+15.
local id = string.format('%.0f-0', us)
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
if last[1] then
  local ms, seq = string.match(last[1][1], '(%d+)-(%d+)')
  if tonumber(ms) >= us then
    id = ms .. '-' .. string.format('%.0f', tonumber(seq) + 1)
  end
end

local revision = tonumber(redis.call('HGET', KEYS[1], 'revision') or '0') + 1
local record = string.sub(ARGV[3], 1, -2) .. ',"revision":' .. string.format('%d', revision) .. '}'
id = redis.call('XADD', KEYS[3], id, 'record', record)
redis.call('XTRIM', KEYS[3], 'MINID', string.format('%.0f', us - tonumber(ARGV[5])))
redis.call('HSET', KEYS[1], 'outcome_body', ARGV[3], 'revision', revision,
           'outcome_id', id, 'outcome', record)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
release_timer()
return {1, revision, id}
