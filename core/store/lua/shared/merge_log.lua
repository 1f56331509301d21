-- The log merge rule, written once: the script loader (core/store/values.py)
-- puts this before each script that says "-- needs: merge_log". Its Python
-- twin, for the engine's fold, is core/store/log_merge.py; a test on a real
-- redis-server holds the two equal.
--
-- Add n entries, ARGV[first ...] = n x (id, score, json), to a log: zset
-- `log` (event id -> received_at us) and hash `records` (event id -> json).
-- A duplicate keeps the earliest receipt, so the log does not depend on which
-- copy a worker happened to see first (on a tie the copy stored first stays).
-- Returns how many entries were new (or moved earlier), and the ARGV index
-- after the entries.
local function merge_log(log, records, first, n)
  local i = first
  local changed = 0
  for _ = 1, n do
    -- Keep the score as the caller's string: Lua numbers print with 14 digits,
    -- too few for microseconds since the epoch.
    local id, score, record = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    local current = redis.call('ZSCORE', log, id)
    if (not current) or tonumber(score) < tonumber(current) then
      redis.call('ZADD', log, score, id)
      redis.call('HSET', records, id, record)
      changed = changed + 1
    end
  end
  return changed, i
end
