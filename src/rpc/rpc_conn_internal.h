/* rpc_conn_internal.h -- what the two halves of the gRPC transport share: the connection
 * (rpc_conn.c: the socket, the nghttp2 session, output, the worker's bounds, deadlines) and
 * the stream (rpc_stream.c: one request from its headers to its answer). Not for other
 * modules. */
#ifndef P2A_RPC_CONN_INTERNAL_H
#define P2A_RPC_CONN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/util.h>
#include <nghttp2/nghttp2.h>

#include "netaddr.h"
#include "rpc_conn.h"
#include "service.h"
#include "svckeys.h"

#define MAX_HEADER_BYTES (16 * 1024) /* all header fields of one request */
#define MAX_PATH 128
#define MAX_MESSAGE_TEXT 256
#define MAX_CONN_BUFFERED (1024 * 1024) /* request bytes held for one connection's streams */
#define RPC_MAX_OPEN_MSG_LEN 1024       /* a message to a method that needs no key (health) */

struct rpc_stream;

struct rpc_call {
    struct service_call base; /* first: the service sees only this */
    struct rpc_stream *stream;
    bool on_heap; /* false: on request_done's stack, for a method that answers inline */
};

struct rpc_stream {
    LIST_ENTRY(rpc_stream) link;
    struct rpc_conn *conn;
    int32_t id;
    /* request */
    size_t header_bytes;
    char path[MAX_PATH];
    size_t path_len;
    bool path_too_long, post, grpc_content_type;
    char auth[SVCKEYS_MAX_KEY_LEN + 16];
    size_t auth_len;
    bool auth_too_long;
    int64_t timeout_ms; /* -1: none */
    bool bad_timeout;
    uint8_t *buf; /* inline_buf, or a slab block once a message outgrows it */
    size_t len, cap;
    bool request_done;
    bool reset; /* reset by the deadline sweep */
    const struct service_method *method;
    const struct svc_key *caller; /* the key that called it, once checked */
    int64_t started_ns;           /* when the request's headers ended */
    int64_t begun_ms;             /* its first HEADERS frame (monotonic) */
    /* response */
    bool answered;
    struct rpc_call *call;
    struct event *deadline_ev;
    uint8_t *resp;
    size_t resp_len, resp_off;
    uint8_t inline_buf[512]; /* most requests fit: no allocation for them */
};

struct rpc_conn {
    LIST_ENTRY(rpc_conn) link;
    struct rpc_env *env;
    struct bufferevent *bev;
    nghttp2_session *session;
    LIST_HEAD(, rpc_stream) streams;
    size_t nstreams;                /* in streams: counted in env->nstreams too */
    size_t buffered;                /* request bytes held by this connection's streams */
    size_t in_flight;               /* calls dispatched and not answered */
    int64_t accepted_ms, active_ms; /* accept; last call dispatched or answered */
    bool got_frame;                 /* the client preface and a first frame have come */
    char addr[NETADDR_MAX];
    /* the last authorization value that named a known key, and its role: the next request
     * on this connection with the same bytes skips hashing it again */
    char known_auth[SVCKEYS_MAX_KEY_LEN + 16];
    size_t known_auth_len;
    enum svc_role known_role;
    const struct svc_key *known_key;
    bool in_recv; /* inside nghttp2_session_mem_recv: no sending, no freeing */
    bool closing; /* free once the output has drained */
};

/* rpc_stream.c: a new stream id of c (counted in c and the worker already). */
void rpc_stream_new(struct rpc_conn *c, int32_t id);
/* Frees s and unlinks it from its connection and its call. */
void rpc_stream_free(struct rpc_stream *s);
/* Resets the streams of c whose request is late at now (monotonic ms); true when any was. */
bool rpc_stream_reset_late(struct rpc_conn *c, int64_t now);
/* nghttp2's callbacks for a request's headers, data, frames and end (the session's user data
 * is the rpc_conn). */
int rpc_stream_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *ud);
int rpc_stream_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                             const uint8_t *data, size_t len, void *ud);
int rpc_stream_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud);
int rpc_stream_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                               void *ud);

/* rpc_conn.c: moves every frame nghttp2 has ready into the bufferevent. Returns false on a
 * fatal error (the caller frees the connection, unless inside nghttp2's receive). */
bool rpc_conn_send(struct rpc_conn *c);

#endif
