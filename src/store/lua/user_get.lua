-- KEYS: the user. {display_name, source, created_at, last_sign_in_at, disabled_at}, or {}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
return redis.call('HMGET', KEYS[1], 'display_name', 'source', 'created_at',
  'last_sign_in_at', 'disabled_at')
