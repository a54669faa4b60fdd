-- KEYS: the client. ARGV: idle_s. A client that expires unless used expires idle_s from now.
if redis.call('TTL', KEYS[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
