--#include "revoke_family.lua"
-- KEYS: the refresh token, its family, the family's access tokens, the three revocation
-- keys. ARGV: fid (the first step's), client_id, now_ms. {jti, exp, ...} of those revoked
-- now; {} when the token is unknown or another client's.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {} end
if redis.call('HGET', KEYS[2], 'client_id') ~= ARGV[2] then return {} end
return revoke_family(KEYS[2], KEYS[3], ARGV[3])
