/* rpc_conn.h -- gRPC over one HTTP/2 connection (nghttp2 on a libevent bufferevent).
 *
 * A worker accepts a socket and hands it to rpc_conn_accept(); from then on the connection
 * lives on the worker's loop until the peer leaves, a protocol error ends it, it stays idle
 * past the idle timeout, or rpc_conn_close_all() runs at shutdown.
 */
#ifndef P2A_RPC_CONN_H
#define P2A_RPC_CONN_H

#include <stddef.h>

#include <event2/util.h>

struct event_base;
struct service_ctx;
struct rpc_conn;
typedef struct ssl_ctx_st SSL_CTX;

/* What every connection of one worker shares. Owned by the worker. */
struct rpc_env {
    struct event_base *base;
    SSL_CTX *ssl_ctx; /* NULL: h2c with prior knowledge */
    struct service_ctx *svc;
    int idle_timeout_s;
    struct rpc_conn *conns; /* every open connection, for shutdown */
    size_t nconns;
};

/* Takes ownership of fd. */
void rpc_conn_accept(struct rpc_env *env, evutil_socket_t fd);
/* Frees every connection at once (streams in flight are dropped). */
void rpc_conn_close_all(struct rpc_env *env);

#endif
