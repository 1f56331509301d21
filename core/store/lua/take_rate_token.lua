-- A token bucket: take tokens for webhook events, or say how long to wait.
-- KEYS[1] bucket hash {tokens, at}; ARGV rate (tokens a second), burst (bucket size),
-- want (the most to take: a web process takes a few ahead, core/store/rate_limit.py).
-- Returns {n, "0"} when n (1 to want) were taken, {0, seconds until one is back} when not.
-- The clock is Redis's own, so every web process shares one bucket and one time.
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3]) or 1
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(saved[1]) or burst
local at = tonumber(saved[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
end
local taken = 0
local wait = 0
if tokens >= 1 then
  taken = math.min(want, math.floor(tokens))
  tokens = tokens - taken
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
-- A full bucket is the same as none: let it expire once it would have refilled.
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {taken, string.format('%.6f', wait)}
