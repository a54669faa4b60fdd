--#include "user_disabled.lua"
--#include "user_gen.lua"
-- Whether the family at key fk may no longer be refreshed for its user (at key uk): the
-- user is disabled, or was disabled after the family was created.
local function family_stale(fk, uk)
  if user_disabled(uk) then return true end
  return (redis.call('HGET', fk, 'gen') or '0') ~= user_gen(uk)
end
