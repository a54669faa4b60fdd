/* rpc_conn.h -- gRPC over one HTTP/2 connection (nghttp2 on a libevent bufferevent).
 *
 * A worker accepts a socket and hands it to rpc_conn_accept(); from then on the connection
 * lives on the worker's loop until the peer leaves, a protocol error ends it, it stays idle
 * past the idle timeout, or rpc_conn_close_all() runs at shutdown.
 *
 * A worker's streams, across all its connections, are bounded (max_streams): each holds its
 * request's state until the request has come whole (or its deadline resets it), and 256 per
 * connection times many connections is memory no pod has. At the bound a new stream takes
 * the place of the oldest stream that is no call being worked on (a request still coming,
 * or an answer its peer does not take) of the connection with the most such streams, when
 * that connection has more streams than the new stream's own (a connection whose peer takes
 * none of our frames is ended whole); else the new stream is refused with RST_STREAM
 * REFUSED_STREAM (nothing of it was processed: a gRPC client retries it). So one client's
 * streams cannot keep another's health check or Introspect out.
 */
#ifndef P2A_RPC_CONN_H
#define P2A_RPC_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/util.h>

#include "log.h"
#include "netaddr.h"

struct event;
struct event_base;
struct connguard;
struct service_ctx;
struct rpc_conn;
typedef struct ssl_ctx_st SSL_CTX;

/* What every connection of one worker shares. Owned by the worker. */
struct rpc_env {
    struct event_base *base;
    SSL_CTX *ssl_ctx; /* NULL: h2c with prior knowledge */
    struct service_ctx *svc;
    int idle_timeout_s;            /* no call in flight and none answered for this long: closed */
    int header_timeout_s;          /* the preface, and each request's headers, within this */
    int request_timeout_s;         /* each request's message, once its headers have come */
    struct connguard *guard;       /* the port's connection bounds, shared by the workers */
    size_t buffered, max_buffered; /* request bytes held by this worker's streams */
    size_t nstreams, max_streams;  /* open streams of this worker's connections (rpc_conn.h) */
    /* the clock as read once for the frames of one read (on_read): monotonic ns, Unix s */
    int64_t turn_ns, turn_now;
    struct log_limit streams_log;
    struct event *sweep_ev;      /* once a second: deadlines (rpc_conn_start) */
    LIST_HEAD(, rpc_conn) conns; /* every open connection, for shutdown */
    size_t nconns;
    bool draining;                 /* set by rpc_conn_drain(): new connections are refused */
    void (*on_drained)(void *arg); /* called once the last connection has closed */
    void *drained_arg;
};

/* Starts the deadline sweep on env->base (after the fields above are set). */
void rpc_conn_start(struct rpc_env *env);
/* Takes ownership of fd, accepted from addr (canonical text); closes it at once when the
 * port's bounds say so. */
void rpc_conn_accept(struct rpc_env *env, evutil_socket_t fd, const char *addr);
/* Frees every connection at once (streams in flight are dropped), and the sweep. */
void rpc_conn_close_all(struct rpc_env *env);

/* Graceful shutdown, step 1: tell every client to stop opening streams (GOAWAY with the
 * largest stream id, so streams already on the wire are still accepted). */
void rpc_conn_drain(struct rpc_env *env);
/* Step 2, a round trip later: the final GOAWAY naming the last stream taken. Streams up to
 * it run to completion; each connection closes when its last one is answered, and
 * env->on_drained runs when none is left. */
void rpc_conn_goaway(struct rpc_env *env);

#endif
