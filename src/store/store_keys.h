/* store_keys.h -- the Redis names every script shares, and the one revocation in Lua.
 *
 * Revoking a token is the same five steps whoever asks (RevokeToken for a PAT; /revoke, code
 * reuse, refresh reuse for OAuth tokens): add the jti to the revoked set scored by the
 * token's expiry, bump the sequence number, log the jti under it, publish
 * "<seq> <jti> <exp> <revoked at, ms>" for the subscribers. STORE_LUA_REVOKE defines it as a
 * Lua function, revoke(jti, exp, ms), that answers the sequence number, or false when the jti
 * was revoked already; scripts start with it.
 */
#ifndef P2A_STORE_KEYS_H
#define P2A_STORE_KEYS_H

#define STORE_KEY_REVOKED "p2a:revoked" /* sorted set: jti by exp */
#define STORE_KEY_REVSEQ "p2a:revseq"   /* the revocation sequence number */
#define STORE_KEY_REVLOG "p2a:revlog"   /* sorted set: jti by sequence number */
#define STORE_CHANNEL "p2a:revocations"
/* prefixes, followed by an id (store.h and oauth_store.h say what each holds) */
#define STORE_KEY_PAT "p2a:pat:"         /* <jti> */
#define STORE_KEY_USER "p2a:user:"       /* <user_id>:pats */
#define STORE_KEY_CLIENT "p2a:client:"   /* <client_id> */
#define STORE_KEY_ACCOUNT "p2a:account:" /* <username> */
#define STORE_KEY_SESSION "p2a:session:" /* <digest> */
#define STORE_KEY_CODE "p2a:code:"       /* <digest> */
#define STORE_KEY_FAMILY "p2a:fam:"      /* <fid>, and <fid>:at */
#define STORE_KEY_REFRESH "p2a:rt:"      /* <digest> */
#define STORE_KEY_RATE "p2a:rl:"         /* <what>:<who> */
#define STORE_KEY_ASSERTION "p2a:aj:"    /* <digest of client_id and jti> */

#define STORE_LUA_REVOKE                                                                           \
    "local function revoke(jti, exp, ms)\n"                                                        \
    "  if redis.call('ZSCORE', '" STORE_KEY_REVOKED "', jti) then return false end\n"              \
    "  redis.call('ZADD', '" STORE_KEY_REVOKED "', exp, jti)\n"                                    \
    "  local seq = redis.call('INCR', '" STORE_KEY_REVSEQ "')\n"                                   \
    "  redis.call('ZADD', '" STORE_KEY_REVLOG "', seq, jti)\n"                                     \
    "  redis.call('PUBLISH', '" STORE_CHANNEL "', seq .. ' ' .. jti .. ' ' .. exp .. ' ' .. ms)\n" \
    "  return seq\n"                                                                               \
    "end\n"

#endif
