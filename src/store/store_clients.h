/* store_clients.h -- registered clients in Redis:
 *   client:<client_id>     string: the client record (JSON); a self-registered one expires
 *                          unless used (each use pushes its expiry out), one registered
 *                          over the RPC never does; a revoked one is a tombstone
 *
 * The end of a client (RevokeClient): its record is replaced by a tombstone,
 * {"revoked_at":<s>}, kept as long as any token of the client could live
 * (REVOKE_SUBJECT_HORIZON_S): every look-up of the client (oreq_client_lookup) then finds it
 * revoked, so it gets no more tokens by any grant, and a RevokeClient retried after a failure
 * finds the tombstone and writes the revocation again. The tokens it holds are revoked by its
 * marker in the revocation set (revoke_client_marker, written with oauth_store_jti_revoke),
 * which every replica applies from memory.
 *
 * Every function completes through cb, once, with the reply parsed as its type says;
 * P2A_ERR_UNAVAILABLE when Redis is not there or answered something of another shape.
 */
#ifndef P2A_STORE_CLIENTS_H
#define P2A_STORE_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* the start of a revoked client's record (lua/client_revoke.lua writes it) */
#define STORE_CLIENT_TOMBSTONE "{\"revoked_at\":"

/* Codes: 1 stored, 0 the id is taken. ttl_s: the client expires unless used within it (0:
 * never). */
void oauth_store_client_put(struct store *st, const char *client_id, const char *record, int ttl_s,
                            store_status_cb cb, void *arg);
/* A client's record: its JSON (len bytes), or revoked (a tombstone: no record). */
struct store_client {
    const char *record;
    size_t len;
    bool revoked;
};
/* c NULL: no such client. */
typedef void (*oauth_client_cb)(void *arg, p2a_err err, const struct store_client *c);
void oauth_store_client_get(struct store *st, const char *client_id, oauth_client_cb cb, void *arg);
/* Code 1. A client got tokens: one that expires unless used now expires idle_s from now (an
 * anonymous /authorize or a refused /token request keeps nothing alive). */
void oauth_store_client_touch(struct store *st, const char *client_id, int idle_s,
                              store_status_cb cb, void *arg);
/* Replaces client_id's record with a tombstone naming now_s, for ttl_s. Codes: 1 done, 0 it
 * was revoked already, -1 no such client. */
void store_client_revoke(struct store *st, const char *client_id, int64_t now_s, int64_t ttl_s,
                         store_status_cb cb, void *arg);

#endif
