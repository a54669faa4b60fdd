-- KEYS: the code. ARGV: the family its tokens will belong to.
-- {0, binding} the first time; {1, fid given the first time} on reuse; {-1} unknown.
local h = redis.call('HMGET', KEYS[1], 'b', 'used', 'fam')
if not h[1] then return {-1} end
if h[2] == '1' then return {1, h[3] or ''} end
redis.call('HSET', KEYS[1], 'used', '1', 'fam', ARGV[1])
return {0, h[1]}
