/* hashpool.h -- password hashing (scrypt) off the event loops.
 *
 * A password check costs tens of milliseconds of CPU on purpose. Run on a loop that serves
 * requests it would stall every connection of that loop, so it runs here: a few threads
 * and a bounded queue. hashpool_verify() copies what it needs, queues the job and returns
 * at once; the answer comes later through done(arg, ok) on the loop of the caller's base.
 * A full queue is refused at once, never waited on: the caller answers "try again".
 *
 * done() is called exactly once per accepted job: with the result, or with ok = false from
 * hashpool_free() for jobs that had not been answered yet (so that nothing the caller
 * holds leaks at shutdown). hashpool_free() runs after the callers' loops have stopped.
 */
#ifndef P2A_HASHPOOL_H
#define P2A_HASHPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct event_base;
struct hashpool;

typedef void (*hashpool_done_cb)(void *arg, bool ok);

/* threads workers; at most queue jobs waiting (besides those running). */
p2a_err hashpool_new(int threads, int queue, struct hashpool **out);
void hashpool_free(struct hashpool *p);

/* Checks password against an encoded hash (oauth_password_verify). false: the queue is full
 * (done will not be called). */
bool hashpool_verify(struct hashpool *p, struct event_base *base, const char *password,
                     const char *hash, hashpool_done_cb done, void *arg);
/* Jobs accepted and not yet answered; for metrics and admission. Any thread. */
size_t hashpool_pending(const struct hashpool *p);
/* How many jobs it holds at most (threads + queue). */
size_t hashpool_capacity(const struct hashpool *p);

#endif
