/* store_clients.h -- the end of a registered client (RevokeClient) in Redis.
 *
 * A revoked client's record is replaced by a tombstone, {"revoked_at":<s>}, kept as long as
 * any token of the client could live (REVOKE_SUBJECT_HORIZON_S): every look-up of the client
 * (oreq_client_lookup) then finds no client, so it gets no more tokens by any grant, and
 * a RevokeClient retried after a failure finds the tombstone and writes the revocation again.
 * The tokens it holds are revoked by its marker in the revocation set (revoke_client_marker,
 * written with oauth_store_jti_revoke), which every replica applies from memory.
 */
#ifndef P2A_STORE_CLIENTS_H
#define P2A_STORE_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Replaces client_id's record with a tombstone naming now_s, for ttl_s: {1} done, {0} it was
 * revoked already, {-1} no such client. */
void store_client_revoke(struct store *st, const char *client_id, int64_t now_s, int64_t ttl_s,
                         store_eval_cb cb, void *arg);
/* Whether a client record (as oauth_store_client_get answers it) is a tombstone. */
bool store_client_revoked(const char *record, size_t len);

#endif
