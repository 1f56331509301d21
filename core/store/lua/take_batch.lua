-- Take a partition's oldest pending events, as take_pending.lua does, and in
-- the same step read the head of each of their calls (what load_heads reads:
-- version, revision, stored facts, log size and the receipt of each taken
-- event's id), so a batch costs one round trip fewer. One Redis only: there
-- every call of the tenant shares the partition's slot (on a cluster a call
-- named by an event could be in another, so heads are read apart there).
--
-- A head is an optimisation, never trusted blindly: it says which key it was
-- read from, and the caller uses it only if that is the call's key and it
-- covers the ids the caller folds; anything else is read again.
--
-- Past ARGV[3] events no head is read: finding each event's call costs
-- Redis a JSON decode, which a large batch pays for more than the round
-- trip it saves (bench.batch_cost).
--
-- KEYS: 1 pending zset, 2 pending hash, 3 wake list
-- ARGV: 1 how many at most, 2 the prefix of the tenant's call keys,
--       3 the most events to read heads for
-- Returns {{field, envelope, ...}, {call key, version, revision, facts, size,
-- {id, ...}, {receipt or nil, ...}}, ...}.
redis.call('DEL', KEYS[3])
local fields = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #fields == 0 then
  return {{}}
end
local envelopes = redis.call('HMGET', KEYS[2], unpack(fields))
local out = {{}}
local taken = out[1]
local ids, order = {}, {}
local heads = #fields <= tonumber(ARGV[3])
-- keys.py's _part: percent-quote all but letters, digits and "_.-~@+=".
local function part(value)
  return (string.gsub(value, '[^%w_%.%-~@%+=]', function(c)
    return string.format('%%%02X', string.byte(c))
  end))
end
for i, field in ipairs(fields) do
  local envelope = envelopes[i]
  if envelope then
    taken[#taken + 1] = field
    taken[#taken + 1] = envelope
  end
  if envelope and heads then
    local ok, decoded = pcall(cjson.decode, envelope)
    local data = ok and type(decoded) == 'table' and decoded['data']
    local uuid = type(data) == 'table' and data['call_uuid']
    local id = ok and type(decoded) == 'table' and decoded['id']
    if type(uuid) == 'string' and uuid ~= '' and type(id) == 'string' then
      if not ids[uuid] then
        ids[uuid] = {}
        order[#order + 1] = uuid
      end
      table.insert(ids[uuid], id)
    end
  elseif not envelope then
    redis.call('ZREM', KEYS[1], field)
  end
end
for _, uuid in ipairs(order) do
  local base = ARGV[2] .. part(uuid)
  local log = base .. ':log'
  local meta = redis.call('HMGET', base, 'v', 'revision', 'facts')
  out[#out + 1] = {
    base, meta[1] or '', meta[2] or '', meta[3] or '',
    redis.call('ZCARD', log), ids[uuid], redis.call('ZMSCORE', log, unpack(ids[uuid])),
  }
end
return out
