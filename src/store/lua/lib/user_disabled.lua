-- Whether the user whose record is at key uk is disabled.
local function user_disabled(uk)
  return redis.call('HEXISTS', uk, 'disabled_at') == 1
end
