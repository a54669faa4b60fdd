--#include "revoke.lua"
--#include "user_gen.lua"
--#include "user_disabled.lua"
-- KEYS: the family, its access tokens, the refresh token, the grant, the grant's families,
-- the user, the three revocation keys. ARGV: client_id user_id scope resource rt_digest fid
-- at_jti at_exp ttl_s now_ms. {1}; {0} the family was revoked meanwhile, {-1} the user is
-- disabled: the access token is revoked then.
redis.call('ZADD', KEYS[2], ARGV[8], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[9])
local off = user_disabled(KEYS[6])
if off or redis.call('HGET', KEYS[1], 'revoked') == '1' then
  revoke(ARGV[7], ARGV[8], ARGV[10])
  return off and -1 or 0
end
redis.call('HSET', KEYS[1], 'client_id', ARGV[1], 'user_id', ARGV[2], 'scope', ARGV[3],
  'resource', ARGV[4], 'cur', ARGV[5], 'prev', '', 'prev_at', '0', 'revoked', '0',
  'gen', user_gen(KEYS[6]))
redis.call('EXPIRE', KEYS[1], ARGV[9])
redis.call('SET', KEYS[3], ARGV[6], 'EX', ARGV[9])
redis.call('SADD', KEYS[5], ARGV[6])
if redis.call('TTL', KEYS[5]) < tonumber(ARGV[9]) then
  redis.call('EXPIRE', KEYS[5], ARGV[9])
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HSET', KEYS[4], 'last_used_at', math.floor(tonumber(ARGV[10]) / 1000))
end
return 1
