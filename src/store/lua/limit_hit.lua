-- KEYS: the address's counter, everyone's. ARGV: the two limits, the window,
-- OAUTH_LIMIT_FRESH. {0, 0} counted; {1, retry_after_s}; {2, retry_after_s}.
local one = tonumber(redis.call('GET', KEYS[1]) or '0')
if one >= tonumber(ARGV[1]) then return {1, math.max(redis.call('TTL', KEYS[1]), 1)} end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) and
   one >= tonumber(ARGV[4]) then
  return {2, math.max(redis.call('TTL', KEYS[2]), 1)}
end
for i = 1, 2 do
  redis.call('INCR', KEYS[i])
  if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[3]) end
end
return {0, 0}
