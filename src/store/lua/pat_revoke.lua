--#include "revoke.lua"
-- KEYS: the PAT, the three revocation keys. ARGV: jti, user_id ('' for any), now, now_ms.
-- {-1} absent (or another user's); {1, revoked_at, 0, exp, user_id} already revoked;
-- {0, revoked_at, seq, exp, user_id} revoked now (the owner, for the audit trail).
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'user_id') ~= ARGV[2] then
  return {-1}
end
local was = tonumber(redis.call('HGET', KEYS[1], 'revoked_at') or '0')
local exp = redis.call('HGET', KEYS[1], 'expires_at')
local user = redis.call('HGET', KEYS[1], 'user_id') or ''
if was ~= 0 then return {1, was, 0, tonumber(exp), user} end
redis.call('HSET', KEYS[1], 'revoked_at', ARGV[3])
local seq = revoke(ARGV[1], exp, ARGV[4]) or 0
return {0, tonumber(ARGV[3]), seq, tonumber(exp), user}
