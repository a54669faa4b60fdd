-- KEYS: the session. {user_id, username, auth_time}, or {} when unknown or expired.
local h = redis.call('HMGET', KEYS[1], 'user_id', 'username', 'auth_time')
if not h[1] then return {} end
return h
