-- KEYS: the assertion's jti. ARGV: its exp, the clock skew allowed. {1} the first time, {0} a
-- replay. Kept while any replica may still take it: to exp plus the skew it allows past exp,
-- on a clock that may lag Redis's by the skew again, and a minute more.
local t = redis.call('TIME')
local ttl = tonumber(ARGV[1]) + 2 * tonumber(ARGV[2]) - tonumber(t[1]) + 60
if ttl < 1 then ttl = 1 end
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ttl) then return 1 end
return 0
