/* store_users.h -- people in Redis: accounts that sign in here (with their sign-in counters
 * and the browsers they signed in from), sessions, and the user record every subject has
 * (created at the first sign-in or by PutUser; disabled and enabled over the RPC).
 *
 * Keys (prefix p2a:; store_keys.h for the slots):
 *   account:{<username>}   hash: user_id hash created_at
 *   session:<digest>       hash: user_id username auth_time; expires with the session
 *   {t}:user:<user_id>     hash: display_name source created_at last_sign_in_at
 *                          [disabled_at] gen (store.h lists the PAT indexes beside it)
 *   rl:{<username>}:pair:<addr>  attempts at the account from one address, a window
 *   rl:{<username>}:account      hash n next: the account's failures, the next attempt allowed
 *   rl:{<username>}:devices      hash: digest of a device cookie -> failures: the browsers
 *                                the account signed in from, at most OAUTH_DEVICES_MAX, 30
 *                                days after the last sign-in
 *
 * Every function completes through cb, once, with the reply parsed as its type says;
 * P2A_ERR_UNAVAILABLE when Redis is not there or answered something of another shape.
 */
#ifndef P2A_STORE_USERS_H
#define P2A_STORE_USERS_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define OAUTH_LOGIN_WINDOW_S 900
#define OAUTH_LOGIN_MAX_DELAY_S 60

/* Codes: 1 created, 0 the username is taken. */
void oauth_store_user_create(struct store *st, const char *username, const char *user_id,
                             const char *hash, int64_t now, store_status_cb cb, void *arg);
struct oauth_login_limits {
    int per_pair;        /* attempts at one account from one address per window */
    int throttle_after;  /* failures at one account before attempts are spaced out */
    int device_failures; /* failures from a browser the account signed in from before */
};

#define OAUTH_DEVICE_TTL_S (30 * 86400) /* a browser is remembered this long after a sign-in */
/* browsers remembered an account; a new one replaces one at random */
#define OAUTH_DEVICES_MAX 16

/* A sign-in attempt reserved: status 0 go on (user_id "" when unknown; device_counted when the
 * browser's own failures were counted); 1 this address has used its attempts at this account;
 * 2 the account is being guessed at: attempts are spaced out (1 s, doubling, at most
 * OAUTH_LOGIN_MAX_DELAY_S); retry_after_s for 1 and 2. */
struct store_login {
    int64_t status;
    const char *user_id, *hash;
    int64_t retry_after_s;
    bool device_counted;
};
typedef void (*oauth_login_cb)(void *arg, p2a_err err, const struct store_login *l);
/* Reserves one sign-in attempt before the password is hashed, atomically, counted as a
 * failure until a session is created (which releases it). Unknown usernames are counted
 * the same way, so that the answers do not tell which accounts exist. device: the digest of
 * the browser's device cookie ("" or NULL: none): a browser this account signed in from
 * before (OWASP's device cookies) has its own lim->device_failures and is neither spaced out
 * nor limited by its address; past them it is like any other browser until it signs in.
 * Any other attempt counts against its address, refused ones too. */
void oauth_store_login_reserve(struct store *st, const char *username, const char *addr,
                               const char *device, const struct oauth_login_limits *lim,
                               int64_t now_ms, oauth_login_cb cb, void *arg);
/* Code 1; also releases the sign-in's reservation (both counters of username at addr) unless
 * addr is NULL (a sign-in through the upstream provider, or one the browser's own failures
 * counted, reserved nothing there), and remembers the browser whose device cookie's digest is
 * device (NULL: none) for OAUTH_DEVICE_TTL_S, its failures at 0 (at most
 * OAUTH_DEVICES_MAX an account: a new one replaces one at random). */
void oauth_store_session_create(struct store *st, const char *sid_digest, const char *user_id,
                                const char *username, const char *addr, const char *device,
                                int64_t auth_time, int ttl_s, store_status_cb cb, void *arg);
/* A session ended: whose it was ("" when there was none), for the audit trail. */
typedef void (*oauth_session_end_cb)(void *arg, p2a_err err, const char *user_id);
/* Ends a session (sign-out). */
void oauth_store_session_delete(struct store *st, const char *sid_digest, oauth_session_end_cb cb,
                                void *arg);
struct store_session {
    const char *user_id, *username;
    int64_t auth_time;
};
/* s NULL: no such session, or an expired one. */
typedef void (*oauth_session_cb)(void *arg, p2a_err err, const struct store_session *s);
void oauth_store_session_get(struct store *st, const char *sid_digest, oauth_session_cb cb,
                             void *arg);

/* The user's record, created if missing (source then says who made it: "local" for an
 * account that signs in here, "dashboard" for PutUser); display_name is updated, and with
 * signed_in the time of the sign-in kept. Codes: 1 created, 0 updated. */
void oauth_store_user_put(struct store *st, const char *user_id, const char *display_name,
                          const char *source, int64_t now, bool signed_in, store_status_cb cb,
                          void *arg);
struct store_user {
    const char *display_name, *source;
    int64_t created_at, last_sign_in_at, disabled_at;
    bool disabled;
};
/* u NULL: there is no record. */
typedef void (*oauth_user_cb)(void *arg, p2a_err err, const struct store_user *u);
void oauth_store_user_get(struct store *st, const char *user_id, oauth_user_cb cb, void *arg);
/* Disables the user (disabled_at; the subject's entry in the revocation set, revoke.h:
 * marker until marker_exp, published to every replica) or enables them again (their tokens
 * of before stay revoked). Codes: 0; -1 no such user. Acknowledged once the replicas have it.
 * A disabled user is issued no PAT, and no access token by a code or a refresh. */
void oauth_store_user_disable(struct store *st, const char *user_id, bool disable,
                              const char *marker, int64_t now_ms, int64_t marker_exp,
                              store_status_cb cb, void *arg);

#endif
