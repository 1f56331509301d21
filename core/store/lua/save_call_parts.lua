-- Replace one call's part in the supervisor's view (one tenant's keys only).
-- KEYS: sv:calls (zset), sv:versions, sv:legs, sv:contacts (hashes), sv:stamp
-- ARGV: call_uuid, version, legs json ("" none), contact json ("" none),
--       settled score (us or +inf), prune before (us), prune batch
-- Returns 1 if written, 0 if a newer fold of the call is stored already.
local uuid = ARGV[1]
local version = tonumber(ARGV[2])
local known = redis.call('HGET', KEYS[2], uuid)
if known and tonumber(known) > version then
  return 0
end
redis.call('HSET', KEYS[2], uuid, version)
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[3], uuid)
else
  redis.call('HSET', KEYS[3], uuid, ARGV[3])
end
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[4], uuid)
else
  redis.call('HSET', KEYS[4], uuid, ARGV[4])
end
redis.call('ZADD', KEYS[1], ARGV[5], uuid)
redis.call('INCR', KEYS[5])
-- Calls settled before retention go, a batch at a time (their logs are gone too).
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[6], 'LIMIT', 0, tonumber(ARGV[7]))
if #old > 0 then
  redis.call('ZREM', KEYS[1], unpack(old))
  redis.call('HDEL', KEYS[2], unpack(old))
  redis.call('HDEL', KEYS[3], unpack(old))
  redis.call('HDEL', KEYS[4], unpack(old))
end
return 1
