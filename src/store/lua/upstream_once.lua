-- KEYS: the upstream sign-in. ARGV: ttl_s. {1} the first time, {0} a replay.
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 1 end
return 0
