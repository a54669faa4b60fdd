-- KEYS: the user, the user's index. ARGV: the last rank to read. The jtis, newest first;
-- {'-1'} (a jti never is) when there is no such user.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'-1'} end
return redis.call('ZREVRANGE', KEYS[2], 0, ARGV[1])
