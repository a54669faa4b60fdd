-- KEYS: PATs. ARGV: a time each. Raises each one's last_used_at to its time, never lowers it.
for i, k in ipairs(KEYS) do
  local cur = redis.call('HGET', k, 'last_used_at')
  if cur and tonumber(cur) < tonumber(ARGV[i]) then
    redis.call('HSET', k, 'last_used_at', ARGV[i])
  end
end
return #KEYS
