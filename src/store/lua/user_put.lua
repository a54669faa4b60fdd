-- KEYS: the user. ARGV: display_name, source, now, '1' when signed in now.
-- {1} created, {0} updated.
local created = redis.call('HSETNX', KEYS[1], 'created_at', ARGV[3])
if created == 1 then
  redis.call('HSET', KEYS[1], 'source', ARGV[2], 'last_sign_in_at', 0)
end
redis.call('HSET', KEYS[1], 'display_name', ARGV[1])
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'last_sign_in_at', ARGV[3]) end
return created
