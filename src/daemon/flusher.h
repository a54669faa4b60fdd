/* flusher.h -- the last-used flusher, on the main thread: every
 * PIPE2_AUTH_LAST_USED_FLUSH_INTERVAL it takes the marks the workers handed to the inbox and
 * writes them in one Redis round trip per 1000 tokens; a failed write puts its marks back
 * for the next round. At shutdown, one last flush. */
#ifndef P2A_FLUSHER_H
#define P2A_FLUSHER_H

#include <stdbool.h>

struct event_base;
struct lastused;
struct lastused_inbox;
struct mbuf;
struct store;

struct flusher;

/* Flushes the marks of inbox through store (both borrowed) every interval_s on base. */
struct flusher *flusher_new(struct event_base *base, struct store *store,
                            struct lastused_inbox *inbox, int interval_s);
/* At shutdown, once the workers' threads are gone: moves their own marks in (marks is left
 * empty). */
void flusher_add(struct flusher *f, struct lastused *marks);
/* The last flush: true when writes are in flight, after which base's loop exits once they
 * have ended (the caller dispatches it, with a deadline). */
bool flusher_last(struct flusher *f);
/* /metrics (the facade's thread): the flushes by result, the marks written. */
void flusher_metrics(const struct flusher *f, struct mbuf *out);
void flusher_free(struct flusher *f);

#endif
