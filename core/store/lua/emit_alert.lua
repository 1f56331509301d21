-- Open or resolve one alert of a tenant: send it into the live events stream only
-- when its state changes, so each alert goes out once when it starts and once
-- (resolved) when it ends.
--
-- KEYS: 1 the tenant's open alerts hash, 2 the live events stream it goes into
-- ARGV: 1 alert type, 2 '1' (holds) or '0', 3 body json without id,
--       4 stream retention us, 5 ttl ms
-- Returns the id added, or false when the state did not change.
-- needs: feed_id
local open = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if open == (ARGV[2] == '1') then
  return false
end
local id = redis.call('XADD', KEYS[2], feed_id(KEYS[2]), 'record', ARGV[3])
trim_feed(KEYS[2], ARGV[4], ARGV[5])
if open then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], id)
end
return id
