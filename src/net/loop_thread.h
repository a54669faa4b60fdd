/* loop_thread.h -- a thread that runs one libevent loop, and the few ways other threads
 * may reach it.
 *
 * The workers, the revocation view and the facade each run on one. What a loop thread owns
 * is built on the main thread before loop_thread_start() (on lt->base), used only by the
 * thread while it runs, and freed on the main thread after loop_thread_join(). Other
 * threads touch it only through the calls below, which activate events (libevent is set up
 * for pthreads before any base exists).
 *
 * Signing keys: each thread that verifies or signs follows the keyring on its own. The
 * main thread hands a new ring with loop_thread_set_keys(); the thread switches between two
 * events, runs on_keys (drop what it cached about the old ring) and then ack, after which
 * the main thread may free the old ring once every thread has acknowledged.
 */
#ifndef P2A_LOOP_THREAD_H
#define P2A_LOOP_THREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <event2/util.h>

#include "err.h"

struct event;
struct event_base;
struct keyring;

struct loop_thread {
    const char *name; /* for logs */
    int nice;         /* the thread's nice value (Linux: per thread); 0 unless set */
    pthread_t thread;
    bool started;
    struct event_base *base;
    struct event *stop_ev, *keys_ev;
    const struct keyring *keys; /* the ring this thread uses now; only it reads this */
    _Atomic(const struct keyring *) next_keys;
    void (*on_keys)(void *arg);   /* on the thread, after switching (may be NULL) */
    void *arg;
    void (*ack)(void *owner);     /* on the thread, last, once switched (may be NULL) */
    void (*on_exit)(void *owner); /* on the thread as it ends (may be NULL) */
    void *owner;                  /* whoever started the thread (the server) */
};

/* A timer on base calling fn(arg) after seconds, and every seconds after that when persist.
 * Started at once; free it with event_free(). */
struct event *loop_timer(struct event_base *base, int seconds, bool persist,
                         void (*fn)(evutil_socket_t, short, void *), void *arg);

/* Makes the loop and its control events. keys is the ring it starts with. */
p2a_err loop_thread_init(struct loop_thread *lt, const char *name, const struct keyring *keys);
p2a_err loop_thread_start(struct loop_thread *lt);
/* From any thread: ends the loop at once (what is pending stays pending). */
void loop_thread_stop(struct loop_thread *lt);
/* From any thread: switch to ring between two events (see above). */
void loop_thread_set_keys(struct loop_thread *lt, const struct keyring *ring);
/* Joins the thread if it was started. */
void loop_thread_join(struct loop_thread *lt);
/* After join: frees the control events and the loop (free what lives on it first). */
void loop_thread_deinit(struct loop_thread *lt);

#endif
