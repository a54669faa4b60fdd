-- KEYS: the user's index, then the records. ARGV: '1' to include revoked ones, the limit,
-- the length of the records' key prefix (the jti follows it). Flat reply, 8 fields a token:
-- jti user_id name scope created_at expires_at last_used_at revoked_at. Index entries whose
-- record has gone (30 days after expiry) are dropped on the way.
local out = {}
local skip = tonumber(ARGV[3])
for i = 2, #KEYS do
  local jti = string.sub(KEYS[i], skip + 1)
  local h = redis.call('HMGET', KEYS[i], 'user_id', 'name', 'scope',
    'created_at', 'expires_at', 'last_used_at', 'revoked_at')
  if not h[1] then
    redis.call('ZREM', KEYS[1], jti)
  elseif ARGV[1] == '1' or h[7] == '0' then
    out[#out + 1] = jti
    for j = 1, 7 do out[#out + 1] = h[j] end
    if #out >= tonumber(ARGV[2]) * 8 then break end
  end
end
return out
