--#include "revoke_family.lua"
-- KEYS: the family, its access tokens, the three revocation keys. ARGV: now_ms.
-- {jti, exp, ...} of those revoked now.
return revoke_family(KEYS[1], KEYS[2], ARGV[1])
