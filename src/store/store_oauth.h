/* store_oauth.h -- the OAuth state in Redis: codes, refresh token families, the
 * revocation of access tokens, client assertions, upstream sign-ins and rate-limit counters.
 * Every state change is one Lua script (src/store/lua/), so two replicas racing on the same
 * code or refresh token see one winner. Clients are store_clients.h's; people (accounts,
 * sign-in, sessions, user records) store_users.h's; their approvals of clients
 * store_grants.h's.
 *
 * Keys (prefix p2a:; the hash tags in braces put a script's keys in one slot, store_keys.h).
 * Secrets (codes, refresh tokens, sessions, client secrets) are kept only as SHA-256 hex
 * digests.
 *   code:<digest>          hash: b (the binding, JSON) used fam; expires after 10 minutes
 *   {t}:fam:<fid>          hash: client_id user_id scope resource cur prev prev_at revoked gen;
 *                          one per authorization, expires with its newest refresh token
 *   {t}:fam:<fid>:at       sorted set: access tokens issued to the family, by exp
 *   {t}:rt:<digest>        string: fid (old members stay to detect their reuse); a script
 *                          about a refresh token reads its fid first, then runs with the
 *                          family's keys declared (and checks the fid again)
 *   aj:<digest>            a client assertion's jti (SHA-256 of client_id and jti), until
 *                          the assertion's exp: used once
 *   up:{upstream}:<digest> string "1": an upstream sign-in that came back with a good ID
 *                          token, by the digest of its state, 10 min (a replay finds it);
 *                          the sign-in in progress itself is a sealed cookie, not a key
 *   rl:{<what>}:<addr>     counters of a rate limit window: rl:{register}:<addr> and
 *   rl:{<what>}:all        rl:{register}:all for registrations, rl:{assertion}:... for client
 *                          assertions, rl:{cc:<client_id>}:... for a client's own tokens
 *                          (the sign-in counters are store_users.h's)
 * Revoking an access token is the revocation mechanism of PATs: the revoked set, the
 * sequence, the log and a message on the channel, in the same script (store_keys.h).
 *
 * Every function completes through cb, once, with the reply parsed as its type says;
 * P2A_ERR_UNAVAILABLE when Redis is not there or answered something of another shape.
 * Pointers handed to a callback are valid only during it.
 */
#ifndef P2A_STORE_OAUTH_H
#define P2A_STORE_OAUTH_H

#include <stdint.h>

#include "store.h"

#define OAUTH_CODE_TTL_S 600
#define OAUTH_REGISTER_WINDOW_S 3600
#define OAUTH_ASSERTION_WINDOW_S 300 /* an assertion's jti is kept this long at most */

/* Code 1. */
void oauth_store_code_create(struct store *st, const char *code_digest, const char *binding,
                             store_status_cb cb, void *arg);
/* A code redeemed: the first time its binding (JSON); on reuse the family its first
 * redemption named. */
struct store_code {
    enum { STORE_CODE_FIRST, STORE_CODE_REUSED, STORE_CODE_UNKNOWN } use;
    const char *binding; /* STORE_CODE_FIRST */
    size_t binding_len;
    const char *fid; /* STORE_CODE_REUSED */
};
typedef void (*oauth_code_cb)(void *arg, p2a_err err, const struct store_code *c);
/* Marks the code used, naming fid as the family its tokens will belong to. */
void oauth_store_code_redeem(struct store *st, const char *code_digest, const char *fid,
                             oauth_code_cb cb, void *arg);

/* Creates the family with its first refresh token and access token. Codes: 1; 0 when the
 * family was revoked meanwhile (a reused code), -1 the user is disabled: the access token is
 * then revoked too. */
void oauth_store_family_create(struct store *st, const char *fid, const char *client_id,
                               const char *user_id, const char *scope, const char *resource,
                               const char *rt_digest, const char *at_jti, int64_t at_exp, int ttl_s,
                               int64_t now_ms, store_status_cb cb, void *arg);

/* A refresh: code 0 rotated (fid, user_id, scope, resource); -1 unknown or expired; -2 family
 * revoked; -3 an old member was replayed: the family and the access tokens in revoked are
 * revoked now; -4 another client's; -5 scope wider; -6 another resource. */
struct store_refresh {
    int64_t code;
    const char *fid, *user_id, *scope, *resource;
    const struct revocation *revoked; /* code -3 */
    size_t nrevoked;
};
typedef void (*oauth_refresh_cb)(void *arg, p2a_err err, const struct store_refresh *r);
/* Rotates: the refresh token rt_digest becomes new_rt_digest. scope ("" for the same) may
 * only narrow; resource ("" for the same; several space-separated) must be among the
 * family's, and names the new access token's audiences. The token just rotated away
 * may be exchanged once more within grace_s (a lost response), never with grace_s 0. */
void oauth_store_refresh(struct store *st, const char *rt_digest, const char *client_id,
                         const char *new_rt_digest, const char *scope, const char *resource,
                         int64_t now_ms, int grace_s, int ttl_s, oauth_refresh_cb cb, void *arg);
/* What RFC 7662 says of a refresh token. */
struct store_refresh_info {
    const char *client_id, *user_id, *scope, *resource;
    int64_t ttl_s;
};
/* info NULL: not active. */
typedef void (*oauth_refresh_info_cb)(void *arg, p2a_err err,
                                      const struct store_refresh_info *info);
/* Active while it is its family's current one, the family stands and its user has not been
 * disabled since it was created; NULL otherwise (unknown, expired, rotated away, revoked, the
 * user disabled, now or since). Three steps: the family, its user, then the answer. */
void oauth_store_refresh_info(struct store *st, const char *rt_digest, oauth_refresh_info_cb cb,
                              void *arg);
/* Records an access token of the family (user_id's). Codes: 1; 0 the family was revoked
 * meanwhile: the token is revoked now; -1 the user is disabled, or was disabled after the
 * family was created (a refresh token from before a disable): the family and its tokens,
 * this one too, are revoked now. */
void oauth_store_family_add_at(struct store *st, const char *fid, const char *user_id,
                               const char *jti, int64_t exp, int64_t now_ms, store_status_cb cb,
                               void *arg);
/* Revokes the family and its access tokens: those revoked now. */
void oauth_store_family_revoke(struct store *st, const char *fid, int64_t now_ms,
                               store_revoked_cb cb, void *arg);
/* The family of a refresh token, if it is client_id's: revoked as above; none otherwise. */
void oauth_store_refresh_revoke(struct store *st, const char *rt_digest, const char *client_id,
                                int64_t now_ms, store_revoked_cb cb, void *arg);
/* Revokes one access token until exp. Codes: 1 revoked now, 0 already. */
void oauth_store_jti_revoke(struct store *st, const char *jti, int64_t exp, int64_t now_ms,
                            store_status_cb cb, void *arg);
/* Records a client assertion's (or an ID-JAG's) jti as used (RFC 7523 3: used once) for as
 * long as a replica may still accept it: exp plus twice skew_s (the skew a replica allows past
 * exp, and as much again between its clock and Redis's), and a minute. Codes: 1 the first
 * time, 0 a replay. */
void oauth_store_assertion_once(struct store *st, const char *client_id, const char *jti,
                                int64_t exp, int skew_s, store_status_cb cb, void *arg);

/* An address not seen in the window still gets this many when everyone together is over the
 * global limit: the global limit never locks out a newcomer (the reserve, oauth_budget.c,
 * guards Redis's bytes). */
#define OAUTH_LIMIT_FRESH 3
/* One more of what (registrations, client assertions, a client's own tokens) from addr, within
 * per_addr per window from one address and global from all. Codes: 0 counted; 1 the address is over
 * its limit, 2 every address together is and this one has made OAUTH_LIMIT_FRESH already (nothing
 * counted then), with value the seconds to retry after. addr: the limit key
 * (netaddr_limit_key). */
void oauth_store_limit_hit(struct store *st, const char *what, const char *addr, int per_addr,
                           int global, int window_s, store_status_cb cb, void *arg);

#define OAUTH_UPSTREAM_TTL_S 600 /* an upstream sign-in must come back within this */

/* Marks an upstream sign-in (the digest of its state) as finished, for ttl_s. Codes: 1 the
 * first time, 0 it was already (a replayed callback). Written only once the provider's ID
 * token has been checked: nothing an anonymous client sends reaches it. */
void oauth_store_upstream_once(struct store *st, const char *state_digest, int ttl_s,
                               store_status_cb cb, void *arg);

#endif
