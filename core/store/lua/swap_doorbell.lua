-- Compare-and-set a partition's doorbell.
--
-- KEYS: 1 doorbell
-- ARGV: 1 expected value ('' = absent), 2 new value ('' = delete)
-- Returns 1 if swapped.
local current = redis.call('GET', KEYS[1])
if (current or '') ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
