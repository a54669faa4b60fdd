/* fake_store.h -- the store (store.h) as a script, for unit tests of the layers above it:
 * every call is recorded (what was asked, with its first key or argument) and answered
 * later, in order, by fake_store_run(), with the reply the test queued for it -- a Redis
 * error, a short reply, anything a real Redis or a lost connection could give. The scripts of
 * store_clients.c, store_oauth.c, store_users.c and store_grants.c are linked for real: they reach
 * store_eval() here, and their replies are parsed as in the daemon. */
#ifndef P2A_FAKE_STORE_H
#define P2A_FAKE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define FAKE_MAX_ITEMS 16

/* One canned reply. err != P2A_OK answers the call with that error. */
struct fake_reply {
    p2a_err err;
    /* store_eval: the reply's items */
    const char *items[FAKE_MAX_ITEMS];
    size_t n;
    /* store_pat_revoke */
    bool already;
    int64_t revoked_at, exp;
};

/* Queues the reply for the next call. */
void fake_store_reply(struct fake_reply r);
/* Answers every queued call (a call with no reply queued gets P2A_ERR_UNAVAILABLE).
 * Returns how many were answered. */
size_t fake_store_run(void);
/* The i-th call since the last reset: its name ("eval", "pat_create", ...) and its first
 * key or argument; NULL past the last. */
const char *fake_store_call(size_t i, const char **first);
void fake_store_reset(void);

#endif
