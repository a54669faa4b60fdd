-- KEYS: the log, the sequence number, the revoked set. ARGV: after, limit.
-- {seq, {jti, exp, seq, ...}}, oldest first.
local cur = redis.call('GET', KEYS[2]) or '0'
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES',
  'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #rows, 2 do
  out[#out + 1] = rows[i]
  out[#out + 1] = redis.call('ZSCORE', KEYS[3], rows[i]) or '0'
  out[#out + 1] = rows[i + 1]
end
return {cur, out}
