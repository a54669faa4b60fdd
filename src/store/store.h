/* store.h -- the durable state in Redis, reached asynchronously from an event loop.
 *
 * One struct store is one connection to Redis, owned by one event loop (a worker's, the
 * revocation view's, the facade's or main's) and used only from it. Every operation completes
 * through its callback, always later, from the loop, never from inside the call; it is called
 * exactly once, also when the connection fails (P2A_ERR_UNAVAILABLE), a command is slower than the
 * configured timeout (P2A_ERR_UNAVAILABLE, and the connection is dropped and remade), or the store
 * is freed. Pointers handed to a callback are valid only during it.
 *
 * The store's files: store_redis.c the connection (with store_sentinel.c, Sentinel mode),
 * store_pat.c this header's PAT, revocation and last-used commands (store_pat_issue.c the one
 * path of issuing a PAT); store_clients.c, store_oauth.c, store_users.c and store_grants.c the
 * rest of the state, each with its header, every reply parsed there into the caller's struct;
 * store_audit.c the audit trail. Every script's text is a file in src/store/lua/, embedded at
 * build time (cmake/embed_lua.cmake: store_lua_<name>). hiredis is seen by store_redis.c,
 * store_sentinel.c, store_pat.c and store_audit.c only (store_internal.h); the others run
 * scripts through store_eval().
 *
 * Keys (prefix p2a:, all in the {t} slot with every token key: store_keys.h):
 *   {t}:pat:<jti>        hash: jti user_id name scope created_at expires_at last_used_at
 *                        revoked_at; expires 30 days after the token does
 *   {t}:user:<user>      hash: display_name source (local, dashboard) created_at
 *                        last_sign_in_at: a PAT is issued, and listed, only for a user
 *                        with a record (oauth_store_user_put); one subject per person
 *   {t}:user:<user>:pats sorted set of jti by creation time (ms): the per-user index
 *   {t}:user:<user>:live sorted set of jti by exp: the user's PATs not known to be revoked
 *                        or expired (pruned by each capped creation; emptied by a disable)
 *   {t}:user:<user>:made PATs made on the account page this hour (a counter)
 *   {t}:revoked          sorted set of revoked jti scored by the token's exp
 *   {t}:revseq, revlog   revocation sequence number, and jti by sequence number
 *   channel revocations: "<seq> <jti> <exp> <revoked at, ms>" published after each
 *                        revocation
 * A full load refuses a Redis in the layout before hash tags (p2a:revseq present).
 */
#ifndef P2A_STORE_H
#define P2A_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store_keys.h" /* STORE_CHANNEL, for the subscriber */

struct event_base;
struct p2a_config;
struct store;

#define STORE_LIST_MAX 1000 /* ListTokens answers at most this many, newest first */

struct pat_record {
    const char *jti;
    const char *user_id;
    const char *name;
    const char *scope;
    int64_t created_at, expires_at, last_used_at, revoked_at;
    int64_t created_ms; /* orders the per-user index */
};

struct revocation {
    const char *jti;
    int64_t exp;
    uint64_t seq; /* 0 where not known (the full load) */
};

typedef void (*store_done_cb)(void *arg, p2a_err err);
/* P2A_ERR_NOT_FOUND: no such token, or not the given user's. exp is the token's expiry,
 * user_id its owner's (for the audit trail). */
typedef void (*store_revoke_cb)(void *arg, p2a_err err, bool already, int64_t revoked_at,
                                int64_t exp, const char *user_id);
typedef void (*store_list_cb)(void *arg, p2a_err err, const struct pat_record *recs, size_t n);
typedef void (*store_revocations_cb)(void *arg, p2a_err err, const struct revocation *v, size_t n,
                                     uint64_t seq);

/* Starts connecting at once; reconnects by itself with backoff. name is for logs. */
struct store *store_new(struct event_base *base, const struct p2a_config *cfg, const char *name);

/* A message on the subscribed channel; payload is valid during the call only. */
typedef void (*store_message_cb)(void *arg, const char *payload, size_t len);
/* subscribed: true once (re)subscribed, false when the connection is lost. */
typedef void (*store_sub_state_cb)(void *arg, bool subscribed);
/* A connection that only listens: SUBSCRIBEs to channel on every (re)connect and hands each
 * message to on_message. TCP keepalive finds a peer that vanished. Free with store_free(). */
struct store *store_new_subscriber(struct event_base *base, const struct p2a_config *cfg,
                                   const char *name, const char *channel,
                                   store_message_cb on_message, store_sub_state_cb on_state,
                                   void *arg);
/* Fails every pending operation with P2A_ERR_UNAVAILABLE, then frees. NULL is a no-op. */
void store_free(struct store *st);
/* Whether the connection is up; safe to call from any thread. */
bool store_connected(const struct store *st);

void store_pat_create(struct store *st, const struct pat_record *r, store_done_cb cb, void *arg);
/* Revokes jti (when user_id is non-empty, only if the token is that user's): writes the
 * record, the revoked set and the log atomically, then publishes. */
void store_pat_revoke(struct store *st, const char *jti, const char *user_id, int64_t now_ms,
                      store_revoke_cb cb, void *arg);
void store_pat_list(struct store *st, const char *user_id, bool include_revoked, store_list_cb cb,
                    void *arg);
/* Every revocation whose token has not expired at now, and the current sequence number,
 * read atomically. */
void store_revocations_load(struct store *st, int64_t now, store_revocations_cb cb, void *arg);
/* Revocations with a sequence number above after, oldest first, at most limit of them, and
 * the current sequence number (lower than after when Redis lost its data: reload). An entry
 * whose token has expired and been purged comes with exp 0. */
void store_revocations_since(struct store *st, uint64_t after, size_t limit,
                             store_revocations_cb cb, void *arg);
/* Deletes revocations of tokens expired at now (at most 10,000 a call); the callback gets
 * how many as n, with no entries. */
void store_revocations_purge(struct store *st, int64_t now, store_revocations_cb cb, void *arg);
/* Raises last_used_at of each jti to ts[i] (never lowers it), in one round trip. */
void store_last_used(struct store *st, const char *const *jtis, const int64_t *ts, size_t n,
                     store_done_cb cb, void *arg);

/* The reply of a script as strings (integers in decimal, nil as ""); valid during the call.
 * A Redis error or a lost connection is P2A_ERR_UNAVAILABLE with n = 0. What the store's
 * scripts answer reaches their callers parsed (store_oauth.h, store_users.h, store_grants.h);
 * this is the shape underneath. */
typedef void (*store_eval_cb)(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                              size_t n);
/* Runs a Lua script (EVAL) with nkeys of args as KEYS and the rest as ARGV; at most 64
 * args, and replies of at most 64 items. */
void store_eval(struct store *st, const char *script, int nkeys, const char *const *args,
                size_t nargs, store_eval_cb cb, void *arg);
/* The same for a script that revokes: its answer comes only once WAIT has seen the write on
 * PIPE2_AUTH_REDIS_WAIT_REPLICAS replicas within PIPE2_AUTH_REDIS_WAIT_TIMEOUT_MS, so that a
 * failover cannot forget a revocation that was acknowledged; else P2A_ERR_UNAVAILABLE (the
 * caller retries: revoking is idempotent). Plain store_eval() when no replica is awaited. */
void store_eval_durable(struct store *st, const char *script, int nkeys, const char *const *args,
                        size_t nargs, store_eval_cb cb, void *arg);

/* The outcome of a script that answers a code, and for some a number after it (value; 0 where
 * there is none): each function says which. A reply of another shape is P2A_ERR_UNAVAILABLE. */
typedef void (*store_status_cb)(void *arg, p2a_err err, int64_t code, int64_t value);
/* A store_status_cb for a write whose outcome nobody waits for (a failure is no worse than
 * the write not being tried). */
void store_status_ignore(void *arg, p2a_err err, int64_t code, int64_t value);

#define STORE_REVOKED_MAX 30 /* access tokens a revocation of a family names, at most */
/* The tokens a script revoked now (jti and exp; seq 0), for the caller to apply locally at
 * once (the revocation log brings them to every replica). */
typedef void (*store_revoked_cb)(void *arg, p2a_err err, const struct revocation *v, size_t n);

/* store_pat_create() within limits, checked in the script that writes the record (so that
 * concurrent creations cannot pass them together): at most max_active of the user's PATs
 * unrevoked and unexpired, at most per_hour made this way in an hour. Codes: 1 stored;
 * -1 unknown user, -2 disabled, 0 not written (the caller gave up), -3 the user holds value
 * (max_active) of them, -4 the hour's PATs are made (value: retry after, s). */
void store_pat_create_capped(struct store *st, const struct pat_record *r, int max_active,
                             int per_hour, store_status_cb cb, void *arg);

/* Redis's memory (INFO memory): used is used_memory, max is maxmemory (0: none set), in bytes.
 * No keys; a reading, for the reserve kept for revocations (facade/oauth_budget.c). */
typedef void (*store_memory_cb)(void *arg, p2a_err err, int64_t used, int64_t max);
void store_memory(struct store *st, store_memory_cb cb, void *arg);

#endif
