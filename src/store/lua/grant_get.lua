--#include "user_disabled.lua"
-- KEYS: the grant, the user. {scope, resource, 1 when the user is disabled else 0}.
local g = redis.call('HMGET', KEYS[1], 'scope', 'resource')
return {g[1] or '', g[2] or '', user_disabled(KEYS[2]) and 1 or 0}
