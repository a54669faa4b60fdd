-- KEYS: the account. ARGV: user_id, password hash, created_at. {1} created, {0} taken.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'hash', ARGV[2], 'created_at', ARGV[3])
return 1
