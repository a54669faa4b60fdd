--#include "revoke.lua"
-- Revokes the family at key fk (its access tokens at fat) and its unexpired access tokens;
-- returns {jti, exp, ...} revoked now (at most 30 of them).
local function revoke_family(fk, fat, ms)
  redis.call('HSET', fk, 'revoked', '1')
  if redis.call('TTL', fk) < 0 then redis.call('EXPIRE', fk, 2592000) end
  local now = math.floor(tonumber(ms) / 1000)
  local ats = redis.call('ZRANGEBYSCORE', fat, '(' .. now, '+inf', 'WITHSCORES')
  local out = {}
  for i = 1, #ats, 2 do
    if revoke(ats[i], ats[i + 1], ms) and #out < 60 then
      out[#out + 1] = ats[i]; out[#out + 1] = ats[i + 1]
    end
  end
  return out
end
