-- KEYS: the revoked set, the sequence number. ARGV: now.
-- {seq, {jti, exp, ...}} of the tokens not expired at now.
return {redis.call('GET', KEYS[2]) or '0', redis.call('ZRANGEBYSCORE', KEYS[1],
  '(' .. ARGV[1], '+inf', 'WITHSCORES')}
