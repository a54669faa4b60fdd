/* worker.h -- one worker thread: its own event loop, its own SO_REUSEPORT listeners on the
 * RPC port and the forward-auth port, its connections, its token cache, its Redis
 * connection and its last-used marks. The kernel spreads new connections across the
 * workers' listeners. */
#ifndef P2A_WORKER_H
#define P2A_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "connguard.h"
#include "err.h"
#include "loop_thread.h"
#include "authz_http.h"
#include "rpc_conn.h"
#include "service.h"

struct event;
struct evconnlistener;
struct mbuf;

/* Request bytes all the streams of one worker may hold (besides each connection's 1 MiB):
 * what half-sent requests can pin is bounded by workers x this. */
#define WORKER_MAX_BUFFERED (32u << 20)
#define WORKER_MAX_STREAMS 2048 /* open HTTP/2 streams across a worker's RPC connections */

struct worker {
    int index;
    char name[16];
    struct loop_thread lt; /* the thread, its loop, its keyring (lt.ack, lt.on_exit: server's) */
    struct evconnlistener *listener;
    struct accept_guard accept;
    struct evconnlistener *fwd_listener; /* PIPE2_AUTH_FORWARD_AUTH_LISTEN; NULL when unset */
    struct accept_guard fwd_accept;
    struct authz_env fenv;
    bool rpc_drained, fwd_drained;
    struct event *drain_ev, *goaway_ev;
    struct event *marks_ev; /* hands this worker's last-used marks to the inbox */
    struct rpc_env env;
    struct service_ctx svc;
};

/* Builds the loop, binds the listener (so a busy port fails start-up, not later) and
 * connects to Redis. On error a message goes to err. */
p2a_err worker_init(struct worker *w, int index, const struct service_shared *sh, SSL_CTX *ssl_ctx,
                    struct connguard *guard, struct connguard *fwd_guard, char *err, size_t errlen);
p2a_err worker_start(struct worker *w);
/* From any thread: graceful end. The listener closes, clients get GOAWAY, calls in flight
 * finish, and the loop ends when the last connection has closed. */
void worker_drain(struct worker *w);
/* Joins the thread (if started) and frees everything the worker owns. */
void worker_deinit(struct worker *w);
/* /metrics (any thread): the calls of the n workers at w, summed (each the only writer of
 * its own counters, read relaxed). */
void workers_metrics(const struct worker *w, int n, struct mbuf *out);

#endif
