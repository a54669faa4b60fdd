-- KEYS: the client. ARGV: now (s), ttl_s. Replaces the record with a tombstone
-- {"revoked_at":<now>} (STORE_CLIENT_TOMBSTONE, then the time): {1} done, {0} it was revoked
-- already, {-1} no such client.
local tomb = '{"revoked_at":'
local v = redis.call('GET', KEYS[1])
if not v then return {-1} end
if string.sub(v, 1, #tomb) == tomb then return {0} end
redis.call('SET', KEYS[1], tomb .. ARGV[1] .. '}', 'EX', ARGV[2])
return {1}
