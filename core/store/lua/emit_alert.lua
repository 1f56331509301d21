-- Open or resolve one alert of a tenant: send it into the live events stream only
-- when its state changes, so each alert goes out once when it starts and once
-- (resolved) when it ends. Ids are server microseconds, as emit_live_events.lua's.
--
-- KEYS: 1 the tenant's open alerts hash, 2 the live events stream it goes into
-- ARGV: 1 alert type, 2 '1' (holds) or '0', 3 body json without id,
--       4 stream retention us, 5 ttl ms
-- Returns the id added, or false when the state did not change.
local open = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if open == (ARGV[2] == '1') then
  return false
end
local now = redis.call('TIME')
local us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local id = string.format('%.0f-0', us)
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if last[1] then
  local ms, seq = string.match(last[1][1], '(%d+)-(%d+)')
  if tonumber(ms) >= us then
    id = ms .. '-' .. string.format('%.0f', tonumber(seq) + 1)
  end
end
redis.call('XADD', KEYS[2], id, 'record', ARGV[3])
redis.call('XTRIM', KEYS[2], 'MINID', string.format('%.0f', us - tonumber(ARGV[4])))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
if open then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], id)
end
return id
