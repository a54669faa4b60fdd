-- KEYS: the user's grants, then the grants. ARGV: the grants' ids. Flat reply, 7 fields a
-- grant: grant_id client_id client_name scope resource approved_at last_used_at. Members
-- whose grant has gone are dropped from the user's set.
local out = {}
for i = 2, #KEYS do
  local h = redis.call('HMGET', KEYS[i], 'client_id', 'client_name',
    'scope', 'resource', 'approved_at', 'last_used_at')
  if not h[1] then
    redis.call('SREM', KEYS[1], ARGV[i - 1])
  else
    out[#out + 1] = ARGV[i - 1]
    for k = 1, 6 do out[#out + 1] = h[k] or '' end
  end
end
return out
