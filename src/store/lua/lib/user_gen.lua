-- A user's generation (the user's record at key uk): disabling a user moves it on, and a
-- family records the one it was created in, so that a family from before a disable is over
-- even once the user is enabled again (README: tokens of before stay revoked). A family or
-- user without one (written before generations) is in generation 0; a user disabled before
-- them is moved to 1 when enabled.
local function user_gen(uk) return redis.call('HGET', uk, 'gen') or '0' end
