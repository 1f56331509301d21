-- Hand back a tenant's entry in a cross-tenant due index, if nobody moved it.
-- KEYS[1] the index zset (tenant -> when it next needs looking at).
-- ARGV: 1 tenant, 2 the score this holder set when it took the tenant,
--       3 the new score, or "" to drop the entry.
-- A writer that marked the tenant meanwhile (ZADD LT: earlier work) moved the
-- score: then it stays as that writer left it.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or math.abs(tonumber(score) - tonumber(ARGV[2])) > 0.0005 then
  return 0
end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
