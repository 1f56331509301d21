-- Append messages to an SMS conversation's log, clear their pending marks, and
-- keep the partition's conversation index (what GET /v1/conversations lists),
-- atomically and idempotently.
-- needs: merge_log
--
-- KEYS: 1 log zset, 2 records hash, 3 pending zset, 4 pending hash,
--       5 conversations zset, 6 conversations meta hash
-- ARGV: 1 ttl ms, 2 n entries, then n x (id, score, json), then n done, then fields,
--       then conversation id, the numbers (JSON list), and the cut-off (us):
--       conversations whose last message is older leave the index.
-- Returns the number of entries that were new (or moved earlier).
local changed, i = merge_log(KEYS[1], KEYS[2], 3, tonumber(ARGV[2]))
local done = tonumber(ARGV[i])
for k = 1, done do
  redis.call('ZREM', KEYS[3], ARGV[i + k])
  redis.call('HDEL', KEYS[4], ARGV[i + k])
end
i = i + done + 1
local conversation, numbers, cutoff = ARGV[i], ARGV[i + 1], ARGV[i + 2]
if changed > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
  -- The newest message's time, whatever order the messages came in.
  local newest = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  redis.call('ZADD', KEYS[5], newest[2], conversation)
  local meta = {messages = redis.call('ZCARD', KEYS[1]), numbers = cjson.decode(numbers)}
  local known = redis.call('HGET', KEYS[6], conversation)
  if known then
    -- Numbers seen in earlier messages stay (a conversation has two sides).
    local seen = {}
    for _, n in ipairs(cjson.decode(known).numbers or {}) do seen[n] = true end
    for _, n in ipairs(meta.numbers) do seen[n] = true end
    local all = {}
    for n in pairs(seen) do table.insert(all, n) end
    table.sort(all)
    meta.numbers = all
  end
  redis.call('HSET', KEYS[6], conversation, cjson.encode(meta))
  -- Conversations Redis no longer keeps leave the index.
  local gone = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. cutoff)
  for _, old in ipairs(gone) do
    redis.call('ZREM', KEYS[5], old)
    redis.call('HDEL', KEYS[6], old)
  end
end
return changed
