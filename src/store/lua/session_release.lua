-- After a sign-in. KEYS: the account's counter at the address, its failures, its browsers.
-- ARGV: how long to remember the browser (0: not), '1' to release the reservation, the
-- browser's device digest, OAUTH_DEVICES_MAX. A release that fails leaves counters that
-- expire with their window; a remembered browser's failures start again.
if ARGV[2] == '1' then redis.call('DEL', KEYS[1], KEYS[2]) end
if ARGV[1] ~= '0' then
  if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 0 and
     redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[3], redis.call('HRANDFIELD', KEYS[3]))
  end
  redis.call('HSET', KEYS[3], ARGV[3], 0)
  redis.call('EXPIRE', KEYS[3], ARGV[1])
end
return 1
