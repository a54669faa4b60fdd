-- KEYS: the session. Ends it: {1, user_id whose it was, '' when there was none}.
local u = redis.call('HGET', KEYS[1], 'user_id') or ''
redis.call('DEL', KEYS[1])
return {1, u}
