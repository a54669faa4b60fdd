-- KEYS: the account, its counter at the address, its failures, its browsers.
-- ARGV: per_pair, the window, now_ms, throttle_after, the longest delay, device_failures,
-- the browser's device digest ("-": none).
-- A browser this account signed in from (KEYS[4]) has its own failures and is spared the
-- account's spacing; any other attempt counts at the address (KEYS[2]) even when refused,
-- and a failure at the account (KEYS[3]).
-- {0, user_id, hash, 0, device}; {1, '', '', retry_after_s, 0}; {2, '', '', retry_after_s, 0}.
local now = tonumber(ARGV[3])
local dn = redis.call('HGET', KEYS[4], ARGV[7])
if dn and tonumber(dn) < tonumber(ARGV[6]) then
  redis.call('HINCRBY', KEYS[4], ARGV[7], 1)
  local h = redis.call('HMGET', KEYS[1], 'user_id', 'hash')
  return {0, h[1] or '', h[2] or '', 0, 1}
end
local function count_at_address()
  redis.call('INCR', KEYS[2])
  if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
end
local pair = tonumber(redis.call('GET', KEYS[2]) or '0')
if pair >= tonumber(ARGV[1]) then
  return {1, '', '', math.max(redis.call('TTL', KEYS[2]), 1), 0}
end
local a = redis.call('HMGET', KEYS[3], 'n', 'next')
local n = tonumber(a[1] or '0')
local nxt = tonumber(a[2] or '0')
if now < nxt then
  -- a refused attempt costs its address
  count_at_address()
  return {2, '', '', math.ceil((nxt - now) / 1000), 0}
end
count_at_address()
n = n + 1
local free = tonumber(ARGV[4])
if n > free then
  local delay = math.min(2 ^ math.min(n - free - 1, 30), tonumber(ARGV[5]))
  nxt = now + delay * 1000
end
redis.call('HSET', KEYS[3], 'n', n, 'next', nxt)
redis.call('EXPIRE', KEYS[3], ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'user_id', 'hash')
return {0, h[1] or '', h[2] or '', 0, 0}
