-- Accept events of one tenant: keep each in its partition's pending set and
-- ring the partition's doorbell if nobody is draining it yet; if a worker's
-- drainer holds the partition (and may be waiting for more), wake it.
--
-- KEYS: per partition touched, 4 keys: pending zset (field -> accepted at),
--       pending hash (field -> envelope), doorbell ("job:<id>" or
--       "worker:<name>"), wake list (at most one token)
-- ARGV: 1 accepted at, then per event 4 values: the index (0-based) of its
--       partition's keys, field, envelope json, doorbell value if rung
-- Returns one flag per event: 1 if the caller must enqueue the drain job it
-- named (the doorbell was free), else 0.
local rung = {}
local n = (#ARGV - 1) / 4
for e = 0, n - 1 do
  local a = 2 + e * 4
  local k = tonumber(ARGV[a]) * 4
  redis.call('ZADD', KEYS[k + 1], 'NX', ARGV[1], ARGV[a + 1])
  redis.call('HSET', KEYS[k + 2], ARGV[a + 1], ARGV[a + 2])
  if redis.call('SET', KEYS[k + 3], ARGV[a + 3], 'NX') then
    rung[e + 1] = 1
  else
    rung[e + 1] = 0
    if redis.call('LLEN', KEYS[k + 4]) == 0 then
      local holder = redis.call('GET', KEYS[k + 3])
      if holder and string.sub(holder, 1, 7) == 'worker:' then
        redis.call('RPUSH', KEYS[k + 4], '1')
        -- Say so on the wake list's channel too: on a Redis Cluster a drainer
        -- cannot BLPOP lists of several slots, so it listens there instead.
        redis.call('PUBLISH', KEYS[k + 4], '1')
      end
    end
  end
end
return rung
