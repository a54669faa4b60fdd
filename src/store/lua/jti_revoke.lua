--#include "revoke.lua"
-- KEYS: the three revocation keys. ARGV: jti, exp, now_ms. {1} revoked now, {0} already.
if revoke(ARGV[1], ARGV[2], ARGV[3]) then return 1 end
return 0
