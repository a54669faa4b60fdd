-- Revoking a token, the same five steps whoever asks (store_keys.h): add the jti to the
-- revoked set scored by the token's expiry, bump the sequence number, log the jti under it,
-- publish "<seq> <jti> <exp> <revoked at, ms>" for the subscribers. The three revocation
-- keys come last in KEYS: the revoked set, the sequence number, the log.
-- revoke(jti, exp, ms[, again]) answers the sequence number, or false when the jti was
-- revoked already; with again it is logged and published once more with the new exp (a
-- subject's entry, revoke.h, whose cutoff moves).
local RK = #KEYS - 2
local function revoke(jti, exp, ms, again)
  if not again and redis.call('ZSCORE', KEYS[RK], jti) then return false end
  redis.call('ZADD', KEYS[RK], exp, jti)
  local seq = redis.call('INCR', KEYS[RK + 1])
  redis.call('ZADD', KEYS[RK + 2], seq, jti)
  redis.call('PUBLISH', 'p2a:revocations', seq .. ' ' .. jti .. ' ' .. exp .. ' ' .. ms)
  return seq
end
