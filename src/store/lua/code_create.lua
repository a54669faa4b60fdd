-- KEYS: the code. ARGV: its binding, ttl_s.
redis.call('HSET', KEYS[1], 'b', ARGV[1], 'used', '0')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
