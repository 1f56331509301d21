-- Send a call's live steps that were not sent yet, in order, once each.
--
-- A step is sent when its rank is above the highest rank sent for the call, or
-- equal to it and its key not sent yet (a second extension ringing). A step
-- below the highest rank sent is never sent: the call has passed it, so a late
-- webhook sends nothing and a call's events stay in order.
--
-- KEYS: 1 the call's sent hash, 2 the partition's live events stream
-- ARGV: 1 json array of {rank, key, body} in rank order, 2 stream retention us,
--       3 ttl ms
-- Returns the ids of the entries added.
-- needs: feed_id
local steps = cjson.decode(ARGV[1])
local highest = tonumber(redis.call('HGET', KEYS[1], 'rank') or '-1')
local added = {}
for _, step in ipairs(steps) do
  local rank = tonumber(step['rank'])
  if rank > highest or (rank == highest and redis.call('HEXISTS', KEYS[1], step['key']) == 0) then
    local id = redis.call('XADD', KEYS[2], feed_id(KEYS[2]), 'record', step['body'])
    redis.call('HSET', KEYS[1], step['key'], id, 'rank', rank)
    highest = rank
    added[#added + 1] = id
  end
end
if #added > 0 then
  trim_feed(KEYS[2], ARGV[2], ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return added
