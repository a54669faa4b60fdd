/* worker.h -- one worker thread: its own event loop, its own SO_REUSEPORT listener on the
 * RPC port, its connections, its token cache, its Redis connection and its last-used marks.
 * The kernel spreads new connections across the workers' listeners. */
#ifndef P2A_WORKER_H
#define P2A_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "rpc_conn.h"
#include "service.h"

struct event;
struct evconnlistener;

struct worker {
    int index;
    pthread_t thread;
    bool started;
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *stop_ev;
    struct event *drain_ev, *goaway_ev;
    void (*on_exit)(void *arg); /* called on the worker's thread as it ends */
    void *exit_arg;
    struct event *keys_ev;                 /* takes next_keys on the worker's thread */
    _Atomic(const struct keyring *) next_keys;
    void (*on_keys)(void *arg);            /* called on the worker's thread once swapped */
    struct event *marks_ev; /* hands this worker's last-used marks to the inbox */
    struct rpc_env env;
    struct service_ctx svc;
};

/* Builds the loop, binds the listener (so a busy port fails start-up, not later) and
 * connects to Redis. On error a message goes to err. */
p2a_err worker_init(struct worker *w, int index, const struct service_shared *sh,
                    SSL_CTX *ssl_ctx, char *err, size_t errlen);
p2a_err worker_start(struct worker *w);
/* From any thread: asks the worker's loop to end now. */
void worker_stop(struct worker *w);
/* From any thread: the worker switches to ring between two requests, forgets what it
 * cached about the old one, then calls on_keys(exit_arg) from its own thread. */
void worker_set_keys(struct worker *w, const struct keyring *ring);
/* From any thread: graceful end. The listener closes, clients get GOAWAY, calls in flight
 * finish, and the loop ends when the last connection has closed. */
void worker_drain(struct worker *w);
/* Joins the thread (if started) and frees everything the worker owns. */
void worker_deinit(struct worker *w);

#endif
