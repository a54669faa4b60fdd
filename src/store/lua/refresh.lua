--#include "revoke_family.lua"
-- KEYS: the refresh token, its family, the family's access tokens, the new refresh token,
-- the three revocation keys. ARGV: fid (the first step's), client_id, new digest, scope,
-- resource, now_ms, grace_s, ttl_s, the token's digest.
-- {0, fid, user_id, scope, resource}; {-1} unknown; {-2} family revoked; {-3, jti, exp, ...}
-- an old member replayed: the family is revoked now; {-4} another client's; {-5} scope
-- wider; {-6} another resource.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
local fk, fat = KEYS[2], KEYS[3]
local f = redis.call('HMGET', fk, 'client_id', 'user_id', 'scope', 'resource',
  'cur', 'prev', 'prev_at', 'revoked')
if not f[1] then return {-1} end
if f[8] == '1' then return {-2} end
if f[1] ~= ARGV[2] then return {-4} end
local now = tonumber(ARGV[6])
local d = ARGV[9]
local grace = tonumber(ARGV[7]) * 1000
local in_grace = d == f[6] and grace > 0 and now - tonumber(f[7]) <= grace
local fresh = d == f[5] or in_grace
if not fresh then
  local out = revoke_family(fk, fat, ARGV[6])
  table.insert(out, 1, -3)
  return out
end
-- lists, space-separated
local function within(have, want)
  local set = {}
  for s in string.gmatch(have, '%S+') do set[s] = true end
  for s in string.gmatch(want, '%S+') do
    if not set[s] then return false end
  end
  return true
end
local scope, resources = f[3], f[4]
if ARGV[4] ~= '' then
  if not within(f[3], ARGV[4]) then return {-5} end
  scope = ARGV[4]
end
if ARGV[5] ~= '' then
  if not within(f[4], ARGV[5]) then return {-6} end
  resources = ARGV[5]
end
if d == f[5] then
  redis.call('HSET', fk, 'prev', f[5], 'prev_at', now)
else
  -- the grace is used up: the old token was exchanged once
  redis.call('HSET', fk, 'prev', '')
end
redis.call('HSET', fk, 'cur', ARGV[3])
redis.call('EXPIRE', fk, ARGV[8])
redis.call('EXPIRE', fat, ARGV[8])
redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[8])
return {0, ARGV[1], f[2], scope, resources}
