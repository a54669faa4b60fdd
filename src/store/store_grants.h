/* store_grants.h -- a person's approvals of clients (remembered consent), in Redis:
 *   {t}:grant:<user_id>:<grant_id>   hash: client_id client_name scope resource approved_at
 *                                    last_used_at (the grant_id: SHA-256 hex of client_id)
 *   {t}:grant:<...>:fams             set: the families (authorizations) issued under it
 *   {t}:user:<user_id>:grants        set: the user's grant ids
 * A family joins its grant's set when it is created (oauth_store_family_create, store_oauth.h);
 * revoking a grant revokes its families.
 *
 * Every function completes through cb, once, with the reply parsed as its type says;
 * P2A_ERR_UNAVAILABLE when Redis is not there or answered something of another shape.
 */
#ifndef P2A_STORE_GRANTS_H
#define P2A_STORE_GRANTS_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define OAUTH_GRANTS_MAX 25 /* grants listed */

/* Whether gid has a grant id's shape: 64 lowercase hex digits (the SHA-256 of the client_id,
 * as listings give it). */
bool oauth_grant_id_valid(const char *gid);

/* What the user approved for the client so far ("" for none), and whether the user is
 * disabled. */
struct store_grant_approval {
    const char *scope, *resource;
    bool user_disabled;
};
typedef void (*oauth_grant_cb)(void *arg, p2a_err err, const struct store_grant_approval *g);
void oauth_store_grant_get(struct store *st, const char *user_id, const char *client_id,
                           oauth_grant_cb cb, void *arg);
/* Adds scope and resource to what the user approved for the client (kept ttl_s). Code 1. */
void oauth_store_grant_approve(struct store *st, const char *user_id, const char *client_id,
                               const char *client_name, const char *scope, const char *resource,
                               int64_t now, int ttl_s, store_status_cb cb, void *arg);

/* One grant of a listing. */
struct store_grant {
    const char *grant_id, *client_id, *client_name, *scope, *resource;
    int64_t approved_at, last_used_at;
};
typedef void (*oauth_grants_cb)(void *arg, p2a_err err, const struct store_grant *v, size_t n);
/* A user's grants, at most OAUTH_GRANTS_MAX. */
void oauth_store_grants_list(struct store *st, const char *user_id, oauth_grants_cb cb, void *arg);
/* Revokes every family of the grant (refresh tokens, and access tokens on every replica
 * through the revocation log) and removes it. Codes: 0; -1 when there is no such grant.
 * Acknowledged once the replicas have it (store_eval_durable). */
void oauth_store_grant_revoke(struct store *st, const char *user_id, const char *grant_id,
                              int64_t now_ms, store_status_cb cb, void *arg);

#endif
