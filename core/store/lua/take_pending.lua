-- Take a partition's oldest pending events (they stay pending until applied)
-- and clear its wake token: what the token announced is in this answer, and a
-- token pushed after it announces something newer.
--
-- KEYS: 1 pending zset, 2 pending hash, 3 wake list
-- ARGV: 1 how many at most
-- Returns {field, envelope, field, envelope, ...}; marks whose envelope is
-- gone (applied meanwhile) are dropped from the zset.
redis.call('DEL', KEYS[3])
local fields = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #fields == 0 then
  return {}
end
local envelopes = redis.call('HMGET', KEYS[2], unpack(fields))
local out = {}
for i, field in ipairs(fields) do
  if envelopes[i] then
    out[#out + 1] = field
    out[#out + 1] = envelopes[i]
  else
    redis.call('ZREM', KEYS[1], field)
  end
end
return out
