--#include "user_disabled.lua"
-- KEYS: the PAT, the user's index, the user, the user's live PATs, the PATs made this hour,
-- the revoked set. ARGV: jti user_id name scope created_at expires_at created_ms drop_at,
-- then the latest Redis time (ms) at which the record may still be written (past it the
-- caller has given up and told its client so: nothing is written, {0}), at most that many
-- live PATs of the user and at most that many made an hour (0: no limit). The live PATs are
-- pruned first of those expired or revoked: they hold at most the cap, give or take the
-- PATs issued uncapped.
-- {1} stored; {-1} unknown user, {-2} disabled, {-3, cap}, {-4, retry_after_s}.
-- users first: one subject
if redis.call('EXISTS', KEYS[3]) == 0 then return -1 end
if user_disabled(KEYS[3]) then return -2 end
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[9]) then
  return 0
end
local cap, per_hour = tonumber(ARGV[10]), tonumber(ARGV[11])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', t[1])
  for _, j in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
    if redis.call('ZSCORE', KEYS[6], j) then redis.call('ZREM', KEYS[4], j) end
  end
  if redis.call('ZCARD', KEYS[4]) >= cap then return {-3, cap} end
end
if per_hour > 0 then
  if tonumber(redis.call('GET', KEYS[5]) or '0') >= per_hour then
    return {-4, math.max(redis.call('TTL', KEYS[5]), 1)}
  end
  redis.call('INCR', KEYS[5])
  if redis.call('TTL', KEYS[5]) < 0 then redis.call('EXPIRE', KEYS[5], 3600) end
end
redis.call('HSET', KEYS[1], 'jti', ARGV[1], 'user_id', ARGV[2], 'name', ARGV[3],
  'scope', ARGV[4], 'created_at', ARGV[5], 'expires_at', ARGV[6], 'last_used_at', 0,
  'revoked_at', 0)
redis.call('EXPIREAT', KEYS[1], ARGV[8])
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
if redis.call('TTL', KEYS[4]) < tonumber(ARGV[6]) - tonumber(t[1]) then
  redis.call('EXPIREAT', KEYS[4], ARGV[6])
end
return 1
