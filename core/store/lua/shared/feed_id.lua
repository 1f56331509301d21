-- The id of the next entry of a feed stream whose ids are server microseconds
-- (live events, alerts; as the outcome streams'), so ids of every stream on one
-- Redis increase together and a reader merging streams resumes from one id.
-- The script loader (core/store/values.py) puts this before each script that
-- says "-- needs: feed_id". Returns the id text, above the stream's last id.
local function feed_id(stream)
  local now = redis.call('TIME')
  local us = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if last[1] then
    local ms, seq = string.match(last[1][1], '(%d+)-(%d+)')
    if tonumber(ms) >= us then
      return ms .. '-' .. string.format('%.0f', tonumber(seq) + 1)
    end
  end
  return string.format('%.0f-0', us)
end

-- Trim a feed stream to its retention (exactly, by age) and keep it that long.
local function trim_feed(stream, retention_us, ttl_ms)
  local now = redis.call('TIME')
  local us = tonumber(now[1]) * 1000000 + tonumber(now[2])
  redis.call('XTRIM', stream, 'MINID', string.format('%.0f', us - tonumber(retention_us)))
  redis.call('PEXPIRE', stream, ttl_ms)
end
