/* revsync.h -- keeping this process's revocation set in step with Redis.
 *
 * Runs on the revocation view's own thread and loop (server.c), which does nothing else.
 * Three paths bring revocations in, and applying one twice changes nothing, so none needs to
 * know about the others:
 *   - start-up: the whole live set is loaded before the process reports SERVING (and again
 *     if Redis's sequence number goes backwards, i.e. Redis lost its data);
 *   - fast path: a subscriber connection receives each revocation as it is published;
 *   - repair path: every poll interval, the revocations logged after the highest sequence
 *     number seen so far, which covers messages lost to reconnects, restarts, failover.
 * Every successful load or poll marks the set synced as of the moment it was sent; the set
 * itself then tells Introspect whether it is too old to trust (revoke.h).
 * It also sweeps expired entries, from memory and from Redis.
 */
#ifndef P2A_REVSYNC_H
#define P2A_REVSYNC_H

#include <stdbool.h>

struct event_base;
struct mbuf;
struct p2a_config;
struct revoke_set;
struct store;
struct revsync;

/* Starts loading at once. store (for commands) and set are borrowed. */
struct revsync *revsync_new(struct event_base *base, const struct p2a_config *cfg,
                            struct store *store, struct revoke_set *set);
void revsync_free(struct revsync *rs);
/* Whether the subscriber connection is up. */
bool revsync_subscriber_connected(const struct revsync *rs);
/* /metrics (any thread): the view's age, the last propagation lag, the set's size, the
 * revocations applied by path. */
void revsync_metrics(const struct revsync *rs, struct mbuf *out);

#endif
