-- Store a subscription unless it is a new one and its tenant already holds as many
-- as it may (one script, so two creations at once cannot both take the last place).
-- KEYS[1] the tenant's subscriptions hash; ARGV id, the subscription's JSON, the cap.
-- Returns 1 when stored, 0 when the tenant is at its cap.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0
    and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
