/* oauth_store.h -- the OAuth state in Redis: clients, accounts, sessions, codes, refresh
 * token families, rate-limit counters. Every state change is one Lua script, so two
 * replicas racing on the same code or refresh token see one winner.
 *
 * Keys (prefix p2a:; the hash tags in braces put a script's keys in one slot, store_keys.h).
 * Secrets (codes, refresh tokens, sessions, client secrets) are kept only as SHA-256 hex
 * digests.
 *   client:<client_id>     string: the client record (JSON); a self-registered one expires
 *                          unless used (each use pushes its expiry out), one registered
 *                          over the RPC never does
 *   account:{<username>}   hash: user_id hash created_at
 *   session:<digest>       hash: user_id username auth_time; expires with the session
 *   code:<digest>          hash: b (the binding, JSON) used fam; expires after 10 minutes
 *   {t}:fam:<fid>          hash: client_id user_id scope resource cur prev prev_at revoked;
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
 *   rl:{<what>}:...        counters of a rate limit window: rl:{<user>}:pair:<addr> and
 *                          rl:{<user>}:account (hash n next) for sign-ins, with the
 *                          account's tag; rl:{<user>}:devices (hash: digest of a device
 *                          cookie -> failures) the browsers the account signed in from, at
 *                          most OAUTH_DEVICES_MAX, 30 days after the last sign-in;
 * rl:{register}:<addr> and rl:{register}:all for registrations, rl:{assertion}:<addr> and
 * rl:{assertion}:all for client assertions Revoking an access token is the revocation mechanism of
 * PATs: the revoked set, the sequence, the log and a message on the channel, in the same script.
 *
 * Every function completes through cb (store.h's store_eval_cb) with the reply described
 * at the function; P2A_ERR_UNAVAILABLE when Redis is not there.
 */
#ifndef P2A_OAUTH_STORE_H
#define P2A_OAUTH_STORE_H

#include <stdint.h>

#include "store.h"

/* A store_eval_cb for a write whose outcome nobody waits for (a failure is no worse than
 * the write not being tried). */
void oauth_store_ignore(void *arg, p2a_err err, const char *const *v, const size_t *lens, size_t n);

#define OAUTH_CODE_TTL_S 600
#define OAUTH_LOGIN_WINDOW_S 900
#define OAUTH_LOGIN_MAX_DELAY_S 60
#define OAUTH_REGISTER_WINDOW_S 3600
#define OAUTH_ASSERTION_WINDOW_S 300 /* an assertion's jti is kept this long at most */

/* {1} stored, {0} the id is taken. ttl_s: the client expires unless used within it (0:
 * never). */
void oauth_store_client_put(struct store *st, const char *client_id, const char *record, int ttl_s,
                            store_eval_cb cb, void *arg);
/* {record} or {""} when unknown. */
void oauth_store_client_get(struct store *st, const char *client_id, store_eval_cb cb, void *arg);
/* {1}. A client got tokens: one that expires unless used now expires idle_s from now (an
 * anonymous /authorize or a refused /token request keeps nothing alive). */
void oauth_store_client_touch(struct store *st, const char *client_id, int idle_s,
                              store_eval_cb cb, void *arg);
/* {1} created, {0} the username is taken. */
void oauth_store_user_create(struct store *st, const char *username, const char *user_id,
                             const char *hash, int64_t now, store_eval_cb cb, void *arg);
struct oauth_login_limits {
    int per_pair;        /* attempts at one account from one address per window */
    int throttle_after;  /* failures at one account before attempts are spaced out */
    int device_failures; /* failures from a browser the account signed in from before */
};

#define OAUTH_DEVICE_TTL_S (30 * 86400) /* a browser is remembered this long after a sign-in */
#define OAUTH_DEVICES_MAX 16 /* browsers remembered an account; a new one replaces one at random   \
                              */

/* Reserves one sign-in attempt before the password is hashed, atomically, counted as a
 * failure until a session is created (which releases it). Unknown usernames are counted
 * the same way, so that the answers do not tell which accounts exist. device: the digest of
 * the browser's device cookie ("" or NULL: none): a browser this account signed in from
 * before (OWASP's device cookies) has its own lim->device_failures and is neither spaced out
 * nor limited by its address; past them it is like any other browser until it signs in.
 * Any other attempt counts against its address, refused ones too.
 * {0, user_id, hash, 0, device} go on (user_id "" when unknown; device 1 when the browser's
 * own failures were counted); {1, "", "", retry_after_s, 0} this address has used its
 * attempts at this account; {2, "", "", retry_after_s, 0} the account is being guessed at:
 * attempts are spaced out (1 s, doubling, at most OAUTH_LOGIN_MAX_DELAY_S). */
void oauth_store_login_reserve(struct store *st, const char *username, const char *addr,
                               const char *device, const struct oauth_login_limits *lim,
                               int64_t now_ms, store_eval_cb cb, void *arg);
/* {1}; also releases the sign-in's reservation (both counters of username at addr) unless
 * addr is NULL (a sign-in through the upstream provider, or one the browser's own failures
 * counted, reserved nothing there), and remembers the browser whose device cookie's digest is
 * device (NULL: none) for OAUTH_DEVICE_TTL_S, its failures at 0 (at most
 * OAUTH_DEVICES_MAX an account: a new one replaces one at random). */
void oauth_store_session_create(struct store *st, const char *sid_digest, const char *user_id,
                                const char *username, const char *addr, const char *device,
                                int64_t auth_time, int ttl_s, store_eval_cb cb, void *arg);
/* Ends a session (sign-out): {1}. */
void oauth_store_session_delete(struct store *st, const char *sid_digest, store_eval_cb cb,
                                void *arg);
/* {user_id, username, auth_time} or {} when unknown or expired. */
void oauth_store_session_get(struct store *st, const char *sid_digest, store_eval_cb cb, void *arg);
/* {1}. */
void oauth_store_code_create(struct store *st, const char *code_digest, const char *binding,
                             store_eval_cb cb, void *arg);
/* Marks the code used, naming fid as the family its tokens will belong to.
 * {0, binding} the first time; {1, fid given the first time} on reuse; {-1} unknown. */
void oauth_store_code_redeem(struct store *st, const char *code_digest, const char *fid,
                             store_eval_cb cb, void *arg);
/* Creates the family with its first refresh token and access token.
 * {1}; {0} when the family was revoked meanwhile (a reused code), {-1} the user is disabled:
 * the access token is then revoked too. */
void oauth_store_family_create(struct store *st, const char *fid, const char *client_id,
                               const char *user_id, const char *scope, const char *resource,
                               const char *rt_digest, const char *at_jti, int64_t at_exp, int ttl_s,
                               int64_t now_ms, store_eval_cb cb, void *arg);
/* Rotates: the refresh token rt_digest becomes new_rt_digest. scope ("" for the same) may
 * only narrow; resource ("" for the same; several space-separated) must be among the
 * family's, and names the new access token's audiences. The token just rotated away
 * may be exchanged once more within grace_s (a lost response), never with grace_s 0.
 * {0, fid, user_id, scope, resource}; {-1} unknown or expired; {-2} family revoked;
 * {-3, jti, exp, ...} an old member was replayed: the family and the access tokens listed
 * are revoked now; {-4} another client's; {-5} scope wider; {-6} another resource. */
void oauth_store_refresh(struct store *st, const char *rt_digest, const char *client_id,
                         const char *new_rt_digest, const char *scope, const char *resource,
                         int64_t now_ms, int grace_s, int ttl_s, store_eval_cb cb, void *arg);
/* What RFC 7662 says of a refresh token: {client_id, user_id, scope, resource, ttl_s} while
 * it is its family's current one, the family stands and its user has not been disabled
 * since it was created; {} otherwise (unknown, expired, rotated away, revoked, the user
 * disabled, now or since). Three steps: the family, its user, then the answer. */
void oauth_store_refresh_info(struct store *st, const char *rt_digest, store_eval_cb cb, void *arg);
/* Records an access token of the family (user_id's). {1}; {0} the family was revoked
 * meanwhile: the token is revoked now; {-1} the user is disabled, or was disabled after the
 * family was created (a refresh token from before a disable): the family and its tokens,
 * this one too, are revoked now. */
void oauth_store_family_add_at(struct store *st, const char *fid, const char *user_id,
                               const char *jti, int64_t exp, int64_t now_ms, store_eval_cb cb,
                               void *arg);
/* Revokes the family and its access tokens: {jti, exp, ...} of those revoked now. */
void oauth_store_family_revoke(struct store *st, const char *fid, int64_t now_ms, store_eval_cb cb,
                               void *arg);
/* The family of a refresh token, if it is client_id's: revoked as above. {} otherwise. */
void oauth_store_refresh_revoke(struct store *st, const char *rt_digest, const char *client_id,
                                int64_t now_ms, store_eval_cb cb, void *arg);
/* Revokes one access token until exp: {1} revoked now, {0} already. */
void oauth_store_jti_revoke(struct store *st, const char *jti, int64_t exp, int64_t now_ms,
                            store_eval_cb cb, void *arg);
/* Records a client assertion's (or an ID-JAG's) jti as used (RFC 7523 3: used once) for as
 * long as a replica may still accept it: exp plus twice skew_s (the skew a replica allows past
 * exp, and as much again between its clock and Redis's), and a minute: {1} the first time,
 * {0} a replay. */
void oauth_store_assertion_once(struct store *st, const char *client_id, const char *jti,
                                int64_t exp, int skew_s, store_eval_cb cb, void *arg);
/* An address not seen in the window still gets this many when everyone together is over the
 * global limit: the global limit never locks out a newcomer (the reserve, oauth_budget.c,
 * guards Redis's bytes). */
#define OAUTH_LIMIT_FRESH 3
/* One more of what (registrations, client assertions) from addr, within per_addr per window
 * from one address and global from all: {0, 0} counted; {1, retry_after_s} the address is
 * over its limit, {2, retry_after_s} every address together is and this one has made
 * OAUTH_LIMIT_FRESH already (nothing counted then). addr: the limit key (netaddr_limit_key). */
void oauth_store_limit_hit(struct store *st, const char *what, const char *addr, int per_addr,
                           int global, int window_s, store_eval_cb cb, void *arg);

#define OAUTH_UPSTREAM_TTL_S 600 /* an upstream sign-in must come back within this */

/* Marks an upstream sign-in (the digest of its state) as finished, for ttl_s: {1} the first
 * time, {0} it was already (a replayed callback). Written only once the provider's ID token
 * has been checked: nothing an anonymous client sends reaches it. */
void oauth_store_upstream_once(struct store *st, const char *state_digest, int ttl_s,
                               store_eval_cb cb, void *arg);

/* The user's record, created if missing (source then says who made it: "local" for an
 * account that signs in here, "dashboard" for PutUser); display_name is updated, and with
 * signed_in the time of the sign-in kept. {1} created, {0} updated. */
void oauth_store_user_put(struct store *st, const char *user_id, const char *display_name,
                          const char *source, int64_t now, bool signed_in, store_eval_cb cb,
                          void *arg);

/* A user's record: {display_name, source, created_at, last_sign_in_at, disabled_at ("" when
 * enabled)}, or {} when there is none. */
void oauth_store_user_get(struct store *st, const char *user_id, store_eval_cb cb, void *arg);
/* Disables the user (disabled_at; the subject's entry in the revocation set, revoke.h:
 * marker until marker_exp, published to every replica) or enables them again (their tokens
 * of before stay revoked). {0}; {-1} no such user. Acknowledged once the replicas have it. A
 * disabled user is issued no PAT, and no access token by a code or a refresh. */
void oauth_store_user_disable(struct store *st, const char *user_id, bool disable,
                              const char *marker, int64_t now_ms, int64_t marker_exp,
                              store_eval_cb cb, void *arg);

/* ---- grants: a person's approval of a client (remembered consent) ---------------------------
 *   {t}:grant:<user_id>:<grant_id>   hash: client_id client_name scope resource approved_at
 *                                    last_used_at (the grant_id: SHA-256 hex of client_id)
 *   {t}:grant:<...>:fams             set: the families (authorizations) issued under it
 *   {t}:user:<user_id>:grants        set: the user's grant ids
 * A family joins its grant's set when it is created (oauth_store_family_create). */

/* Whether gid has a grant id's shape: 64 lowercase hex digits (the SHA-256 of the client_id,
 * as listings give it). */
bool oauth_grant_id_valid(const char *gid);

/* {scope, resource, disabled}: what the user approved for the client so far ("" for none),
 * and 1 when the user is disabled (else 0). */
void oauth_store_grant_get(struct store *st, const char *user_id, const char *client_id,
                           store_eval_cb cb, void *arg);
/* Adds scope and resource to what the user approved for the client (kept ttl_s). {1}. */
void oauth_store_grant_approve(struct store *st, const char *user_id, const char *client_id,
                               const char *client_name, const char *scope, const char *resource,
                               int64_t now, int ttl_s, store_eval_cb cb, void *arg);
#define OAUTH_GRANTS_MAX 25 /* grants listed */

/* A user's grants (at most OAUTH_GRANTS_MAX), for oauth_store_grants_read(). */
void oauth_store_grants_list(struct store *st, const char *user_id, store_eval_cb cb, void *arg);

/* One grant of a listing; the strings point into the reply it was read from. */
struct oauth_grant {
    const char *grant_id, *client_id, *client_name, *scope, *resource;
    int64_t approved_at, last_used_at;
};
/* The grants of oauth_store_grants_list()'s reply v[0..n) into out; how many (a reply of
 * another shape reads as none). */
size_t oauth_store_grants_read(const char *const *v, size_t n,
                               struct oauth_grant out[OAUTH_GRANTS_MAX]);
/* Revokes every family of the grant (refresh tokens, and access tokens on every replica
 * through the revocation log) and removes it: {0}; {-1} when there is no such grant.
 * Acknowledged once the replicas have it (store_eval_durable). */
void oauth_store_grant_revoke(struct store *st, const char *user_id, const char *grant_id,
                              int64_t now_ms, store_eval_cb cb, void *arg);

#endif
