--#include "family_stale.lua"
-- KEYS: the refresh token, its family, the family's user. ARGV: fid, the token's digest,
-- user_id (the steps before). {client_id, user_id, scope, resource, ttl_s}, or {}.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {} end
local f = redis.call('HMGET', KEYS[2], 'client_id', 'user_id', 'scope', 'resource',
  'cur', 'revoked')
if not f[1] or f[6] == '1' or f[5] ~= ARGV[2] or f[2] ~= ARGV[3] then
  return {}
end
if family_stale(KEYS[2], KEYS[3]) then return {} end
return {f[1], f[2], f[3], f[4], redis.call('TTL', KEYS[1])}
