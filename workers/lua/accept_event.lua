-- Accept an event: keep it in its partition's pending set and ring the
-- partition's doorbell if nobody is draining it yet.
--
-- KEYS: 1 pending zset (field -> accepted at), 2 pending hash (field -> envelope),
--       3 doorbell (who drains this partition: "job:<id>" or "worker:<name>")
-- ARGV: 1 field, 2 accepted at, 3 envelope json, 4 doorbell value if rung
-- Returns 1 if the caller must enqueue a drain job, else 0.
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if redis.call('SET', KEYS[3], ARGV[4], 'NX') then
  return 1
end
return 0
