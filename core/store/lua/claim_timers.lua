-- Claim due timers: push each one's score to a lease, so a worker that dies
-- while deciding leaves the timer to be claimed again when the lease runs out.
--
-- KEYS: 1 timers zset
-- ARGV: 1 now, 2 lease until, 3 limit
-- Returns the claimed members.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], member)
end
return due
