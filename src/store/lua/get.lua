-- A string key's value, "" when there is none (a client's record; a refresh token's family).
return redis.call('GET', KEYS[1]) or ''
