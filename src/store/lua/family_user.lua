-- KEYS: a family. Its user_id, "" when there is none.
return redis.call('HGET', KEYS[1], 'user_id') or ''
