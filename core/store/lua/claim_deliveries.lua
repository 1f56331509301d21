-- Claim due delivery attempts of one tenant, a quota per subscription; push each
-- claimed one's score to a lease, so a delivery process that dies mid-attempt
-- leaves it to be claimed again when the lease runs out. Then set each
-- subscription's entry in the tenant's due index to its queue's earliest score
-- (or drop it when the queue is empty), so the index never points later than
-- the queue it stands for.
--
-- KEYS: 1 the tenant's due index (zset subscription -> earliest score),
--       2.. one delivery queue per subscription (zset delivery -> due or lease end)
-- ARGV: 1 now, 2 lease until, then per queue: its subscription id, its quota
-- Returns one list of claimed delivery ids per queue, in KEYS order.
local now, lease = ARGV[1], ARGV[2]
local claimed = {}
for i = 2, #KEYS do
  local subscription = ARGV[2 * i - 1]
  local quota = tonumber(ARGV[2 * i])
  local due = {}
  if quota > 0 then
    due = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', now, 'LIMIT', 0, quota)
    for _, member in ipairs(due) do
      redis.call('ZADD', KEYS[i], 'XX', lease, member)
    end
  end
  local first = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  if first[1] then
    redis.call('ZADD', KEYS[1], first[2], subscription)
  else
    redis.call('ZREM', KEYS[1], subscription)
  end
  claimed[#claimed + 1] = due
end
return claimed
