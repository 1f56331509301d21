-- A drainer found its partition empty: let go of the doorbell, unless an
-- event slipped in (then keep draining) or someone else holds it now.
--
-- KEYS: 1 pending zset, 2 doorbell
-- ARGV: 1 this drainer's doorbell value
-- Returns 1 when done, 0 when there is more to drain.
if redis.call('ZCARD', KEYS[1]) > 0 then
  return 0
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 1
