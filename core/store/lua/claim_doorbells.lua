-- A drainer takes over partitions of one tenant: each doorbell that is free
-- or names one of the given holders now names the drainer.
--
-- KEYS: doorbells
-- ARGV: 1 the drainer ("worker:<name>"), then holders it may take over from
--       (e.g. "job:<id>" of its own job, or of jobs queued for it)
-- Returns one flag per doorbell: 1 if the drainer holds it now.
local me = ARGV[1]
local from = {}
for i = 2, #ARGV do
  from[ARGV[i]] = true
end
local held = {}
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if current == me then
    held[i] = 1
  elseif (not current) or from[current] then
    redis.call('SET', key, me)
    held[i] = 1
  else
    held[i] = 0
  end
end
return held
