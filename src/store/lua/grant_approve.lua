-- KEYS: the grant, the user's grants. ARGV: client_id, client_name, scope, resource, now,
-- ttl_s, the grant's id. Adds scope and resource to what was approved.
-- lists, space-separated, in order, no repeats
local function union(a, b)
  local seen, out = {}, {}
  for s in string.gmatch((a or '') .. ' ' .. b, '%S+') do
    if not seen[s] then seen[s] = true; out[#out + 1] = s end
  end
  return table.concat(out, ' ')
end
local h = redis.call('HMGET', KEYS[1], 'scope', 'resource', 'approved_at')
redis.call('HSET', KEYS[1], 'client_id', ARGV[1], 'client_name', ARGV[2],
  'scope', union(h[1], ARGV[3]), 'resource', union(h[2], ARGV[4]), 'approved_at', ARGV[5])
if not h[3] then redis.call('HSET', KEYS[1], 'last_used_at', 0) end
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('SADD', KEYS[2], ARGV[7])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[6]) then
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
return 1
