-- KEYS: the session. ARGV: user_id, username, auth_time, ttl_s.
redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'username', ARGV[2], 'auth_time', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
