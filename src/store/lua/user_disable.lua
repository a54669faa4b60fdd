--#include "revoke.lua"
-- KEYS: the user, the user's live PATs, the three revocation keys. ARGV: '1' to disable
-- ('0' to enable), the subject's marker, now_ms, the marker's exp. {0}; {-1} no such user.
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if ARGV[1] == '0' then
  if redis.call('HDEL', KEYS[1], 'disabled_at') == 1 then
    -- disabled before generations
    redis.call('HSETNX', KEYS[1], 'gen', 1)
  end
  return {0}
end
redis.call('HSET', KEYS[1], 'disabled_at', math.floor(tonumber(ARGV[3]) / 1000))
redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('DEL', KEYS[2])
revoke(ARGV[2], ARGV[4], ARGV[3], true)
return {0}
