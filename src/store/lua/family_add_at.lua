--#include "revoke_family.lua"
--#include "family_stale.lua"
-- KEYS: the family, its access tokens, the user, the three revocation keys. ARGV: jti, exp,
-- now_ms. {1}; {0} the family was revoked meanwhile; {-1} the user is disabled or was since
-- the family was created: a family of such a user ends here, with the token just made.
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'revoked') == '1' then
  revoke(ARGV[1], ARGV[2], ARGV[3])
  return 0
end
if family_stale(KEYS[1], KEYS[3]) then
  revoke_family(KEYS[1], KEYS[2], ARGV[3])
  return -1
end
return 1
