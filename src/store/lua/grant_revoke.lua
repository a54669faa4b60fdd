--#include "revoke_family.lua"
-- KEYS: the grant, its families' set, the user's grants, two keys a family of the batch,
-- the three revocation keys. ARGV: now_ms, the grant's id, the families' ids.
-- Revokes the batch's families (each with its access tokens) and takes them out of the
-- set; a batch with none removes the grant. {families revoked}, {0} the grant is gone now,
-- {-1} there was none.
local fams = (#KEYS - 6) / 2
if fams == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[2])
  return {0}
end
for f = 1, fams do
  local fk, fat = KEYS[2 + 2 * f], KEYS[3 + 2 * f]
  if redis.call('EXISTS', fk) == 1 then revoke_family(fk, fat, ARGV[1]) end
  redis.call('SREM', KEYS[2], ARGV[2 + f])
end
return {fams}
