-- KEYS: a set. ARGV: how many. Some of its members.
return redis.call('SRANDMEMBER', KEYS[1], ARGV[1])
