-- KEYS: the hash, the event's class index (named or anon), then its person's and client's
-- indexes when it has them. ARGV: id, JSON, the oldest id kept (retention by age), the
-- class's cap, the per-person/client cap, the retention in milliseconds (a person's or
-- client's index leaves with the last event it names, even when nothing is written to it
-- again). An event removed leaves its person's and client's index too (keys of the {audit}
-- slot that the script names from the event): an index never holds ids of nothing, which
-- a read would scan past at the cost of its budget.
local id, cutoff = ARGV[1], '(' .. ARGV[3]
local cap, icap = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('HSET', KEYS[1], id, ARGV[2])
for i = 2, #KEYS do redis.call('ZADD', KEYS[i], 0, id) end
local old = redis.call('ZRANGEBYLEX', KEYS[2], '-', cutoff, 'LIMIT', 0, 64)
local over = redis.call('ZCARD', KEYS[2]) - cap
if over > 0 then
  for _, x in ipairs(redis.call('ZRANGE', KEYS[2], 0, math.min(over, 64) - 1)) do
    old[#old + 1] = x
  end
end
if #old > 0 then
  for _, x in ipairs(old) do
    local j = redis.call('HGET', KEYS[1], x)
    local ok, e = pcall(cjson.decode, j or '')
    if ok and type(e) == 'table' then
      if type(e.user_id) == 'string' then
        redis.call('ZREM', 'p2a:{audit}:u:' .. e.user_id, x)
      end
      if type(e.client_id) == 'string' then
        redis.call('ZREM', 'p2a:{audit}:c:' .. e.client_id, x)
      end
    end
  end
  redis.call('HDEL', KEYS[1], unpack(old))
  redis.call('ZREM', KEYS[2], unpack(old))
end
for i = 3, #KEYS do
  redis.call('ZREMRANGEBYLEX', KEYS[i], '-', cutoff)
  local n = redis.call('ZCARD', KEYS[i]) - icap
  if n > 0 then redis.call('ZREMRANGEBYRANK', KEYS[i], 0, n - 1) end
  redis.call('PEXPIRE', KEYS[i], ARGV[6])
end
return 1
