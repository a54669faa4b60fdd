/* rpc_conn.c -- the gRPC wire protocol over HTTP/2 (see rpc_conn.h).
 *
 * DESIGN
 * ------
 * Three levels, as in nghttp2's libevent example: rpc_conn per connection (bufferevent +
 * nghttp2 session), rpc_stream per HTTP/2 stream (the request's headers and message, the
 * response), rpc_call per dispatched call (what the service answers through).
 *
 * A request's headers are checked as soon as they end (method, content type, :path,
 * grpc-timeout, service key and role), so a refused call is answered at once, Trailers-Only,
 * without waiting for its body, and its DATA is never buffered. DATA of an accepted call is
 * buffered up to RPC_MAX_MSG_LEN (RPC_MAX_OPEN_MSG_LEN for the methods that need no key),
 * within the connection's and the worker's bounds; at END_STREAM the one message is unframed
 * and the method's handler runs.
 *
 * Deadlines (a sweep once a second, no timer per stream): the client preface within
 * header_timeout of the accept; each request's headers within header_timeout of its first
 * HEADERS frame and its message within request_timeout after them, else the stream is reset
 * and its bytes freed; a connection with no call in flight and none answered for
 * idle_timeout gets GOAWAY. Trickling bytes, PINGs or WINDOW_UPDATEs keep nothing open. A reply is
 * HEADERS, one DATA with the framed message, then trailers with grpc-status; an error is one
 * HEADERS frame with grpc-status and grpc-message (Trailers-Only).
 *
 * Calls that wait on Redis may outlive their stream (the client resets it, the deadline
 * passes, the connection drops): the stream and the call point at each other, and whichever
 * goes first clears the other's pointer. A call whose stream is gone is answered into the
 * void and freed.
 *
 * Allocation: streams, responses and nghttp2's own allocations come from the thread's
 * slab (slab.h), so a steady load allocates nothing from malloc.
 *
 * Freeing: a connection is freed only from bufferevent callbacks, never from inside an
 * nghttp2 callback (those only set flags). Output is produced with nghttp2_session_mem_send
 * into the bufferevent, which coalesces every frame ready in one loop turn into one write;
 * we stop producing past OUTPUT_HIGH_WATER and resume from the write callback.
 *
 * Threading: a connection belongs to its worker's loop.
 */
#include "rpc_conn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "connguard.h"
#include "log.h"
#include "loop_thread.h"
#include "metrics.h"
#include "rpc_frame.h"
#include "rpc_status.h"
#include "service.h"
#include "slab.h"
#include "svckeys.h"
#include "xalloc.h"

#define OUTPUT_HIGH_WATER (64 * 1024)
#define MAX_CONCURRENT_STREAMS 256
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

static nghttp2_session_callbacks *callbacks; /* shared, immutable after first use */

/* nghttp2 allocates per stream and per frame: from the thread's slab, not malloc */
static void *mem_malloc(size_t n, void *ud)
{
    (void)ud;
    return slab_alloc(n);
}

static void mem_free(void *p, void *ud)
{
    (void)ud;
    slab_free(p);
}

static void *mem_calloc(size_t count, size_t n, void *ud)
{
    (void)ud;
    return slab_calloc(count, n);
}

static void *mem_realloc(void *p, size_t n, void *ud)
{
    (void)ud;
    return slab_realloc(p, n);
}

static nghttp2_mem slab_mem = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc};

static void conn_free(struct rpc_conn *c);
static bool conn_send(struct rpc_conn *c);

/* ---- answering ---------------------------------------------------------------------------- */

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE             \
    }

static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    (void)user_data;
    struct rpc_stream *s = source->ptr;
    size_t n = s->resp_len - s->resp_off;
    if (n > length)
        n = length;
    memcpy(buf, s->resp + s->resp_off, n);
    s->resp_off += n;
    if (s->resp_off == s->resp_len) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_nv trailers[] = {NV("grpc-status", "0")};
        if (nghttp2_submit_trailer(session, stream_id, trailers, 1) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

static void stream_answer(struct rpc_stream *s, int status, const char *msg, uint8_t *body,
                          size_t len)
{
    if (s->answered) {
        slab_free(body);
        return;
    }
    s->answered = true;
    if (s->deadline_ev != NULL)
        event_del(s->deadline_ev);
    if (s->request_done && s->method != NULL) {
        s->conn->in_flight--;
        s->conn->active_ms = clock_mono_ms();
    }
    int64_t took_ns = clock_mono_ns() - s->started_ns;
    int mi = service_method_index(s->method);
    metrics_rpc(s->conn->env->svc->mx, mi, status, took_ns);
    /* an access log line for the admin methods; never per Introspect or health check (the
     * hot path: its counts and latencies are in /metrics) */
    if (s->method != NULL && !s->method->answers_inline && log_enabled(LOG_INFO))
        log_info("rpc.access", "%s answered gRPC status %d in %.3f ms (stream %d)",
                 service_method_name(mi), status, (double)took_ns / 1e6, s->id);
    nghttp2_session *session = s->conn->session;
    int rv;
    if (body != NULL && status == RPC_OK) {
        s->resp = body;
        s->resp_len = len;
        nghttp2_nv hdrs[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
        nghttp2_data_provider prd = {.source.ptr = s, .read_callback = read_body};
        rv = nghttp2_submit_response(session, s->id, hdrs, 2, &prd);
    } else {
        slab_free(body);
        char code[12], text[MAX_MESSAGE_TEXT * 3 + 1];
        snprintf(code, sizeof(code), "%d", status);
        rpc_status_encode_message(msg ? msg : "", text, sizeof(text));
        nghttp2_nv hdrs[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                             NV("grpc-status", code), NV("grpc-message", text)};
        rv = nghttp2_submit_response(session, s->id, hdrs, text[0] ? 4 : 3, NULL);
    }
    if (rv != 0)
        log_debug("rpc.answer_failed", "rpc: cannot answer stream %d: %s", s->id,
                  nghttp2_strerror(rv));
    if (!s->conn->in_recv)
        conn_send(s->conn);
}

/* Answers with a plain HTTP status: for requests that are not gRPC at all. */
static void stream_answer_http(struct rpc_stream *s, const char *status)
{
    s->answered = true;
    nghttp2_nv hdrs[] = {NV(":status", status)};
    nghttp2_submit_response(s->conn->session, s->id, hdrs, 1, NULL);
}

static void call_complete(struct service_call *base, int status, const char *msg, uint8_t *body,
                          size_t len)
{
    struct rpc_call *call = (struct rpc_call *)base;
    struct rpc_stream *s = call->stream;
    if (s != NULL) {
        s->call = NULL;
        stream_answer(s, status, msg, body, len);
    } else {
        slab_free(body); /* the stream went away first: nobody to tell */
    }
    if (call->on_heap)
        free(call);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rpc_stream *s = arg;
    if (s->call != NULL) {
        s->call->stream = NULL;
        s->call = NULL;
    }
    stream_answer(s, RPC_DEADLINE_EXCEEDED, "deadline exceeded", NULL, 0);
}

/* ---- streams -------------------------------------------------------------------------------- */

static void stream_free(struct rpc_stream *s)
{
    struct rpc_conn *c = s->conn;
    LIST_REMOVE(s, link);
    if (s->call != NULL)
        s->call->stream = NULL;
    if (s->deadline_ev != NULL)
        event_free(s->deadline_ev);
    c->buffered -= s->len;
    c->env->buffered -= s->len;
    c->nstreams--;
    c->env->nstreams--;
    if (s->request_done && s->method != NULL && !s->answered)
        c->in_flight--;
    if (s->buf != s->inline_buf)
        slab_free(s->buf);
    slab_free(s->resp);
    slab_free(s);
}

/* The worker is at its bound on streams and c opens one more: ends the oldest stream that
 * is no call being worked on (a request still coming, or an answer its peer has not taken)
 * of the connection with the most such streams, when that connection has more streams than
 * c would (see rpc_conn.h). Only under attack or overload: a walk over the worker's
 * connections. True when room was made. */
static bool make_room(struct rpc_conn *c)
{
    struct rpc_conn *v = NULL, *x;
    LIST_FOREACH(x, &c->env->conns, link)
    {
        if (!x->closing && (v == NULL || x->nstreams - x->in_flight > v->nstreams - v->in_flight))
            v = x;
    }
    if (v == NULL || v == c || v->nstreams <= c->nstreams + 1 || v->nstreams == v->in_flight)
        return false;
    struct rpc_stream *oldest = NULL, *s;
    LIST_FOREACH(s, &v->streams, link) /* newest first */
    {
        if (!s->request_done || s->answered)
            oldest = s;
    }
    if (oldest == NULL)
        return false;
    int32_t id = oldest->id;
    bool body = oldest->resp != NULL; /* nghttp2 reads it (read_body) until the stream closes */
    if (!oldest->reset)
        nghttp2_submit_rst_stream(v->session, NGHTTP2_FLAG_NONE, id,
                                  oldest->answered ? NGHTTP2_CANCEL : NGHTTP2_REFUSED_STREAM);
    oldest->reset = oldest->answered = true;
    if (!body) { /* its state goes now, whether or not v's peer reads the reset */
        nghttp2_session_set_stream_user_data(v->session, id, NULL);
        stream_free(oldest);
    }
    /* v is not the connection being read: it may be freed here. One whose peer takes none of
     * our frames (the reset cannot go out, so an answer's stream stays) goes whole. */
    if (!conn_send(v) || (body && nghttp2_session_get_stream_user_data(v->session, id) != NULL))
        conn_free(v);
    return true;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct rpc_conn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct rpc_env *env = c->env;
    if (env->nstreams >= env->max_streams && !make_room(c)) {
        /* no state of ours: its headers and data are read and dropped, nghttp2 closes it
         * once the reset is out */
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        unsigned long long passed;
        if (log_every_second(&env->streams_log, &passed))
            log_warn("rpc.stream_refused",
                     "rpc: refused a stream from %s: the worker holds %zu streams, its bound "
                     "(%llu more refused since the last line)",
                     c->addr, env->nstreams, passed);
        return 0;
    }
    c->nstreams++;
    env->nstreams++;
    struct rpc_stream *s = slab_calloc(1, sizeof(*s));
    s->conn = c;
    s->id = frame->hd.stream_id;
    s->timeout_ms = -1;
    s->begun_ms = clock_mono_ms();
    s->buf = s->inline_buf;
    s->cap = sizeof(s->inline_buf);
    LIST_INSERT_HEAD(&c->streams, s, link);
    nghttp2_session_set_stream_user_data(session, s->id, s);
    return 0;
}

static bool name_is(const uint8_t *name, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags, (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* request trailers carry nothing we use */
    struct rpc_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL)
        return 0;
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > MAX_HEADER_BYTES)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
    if (name_is(name, namelen, ":method")) {
        s->post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
    } else if (name_is(name, namelen, ":path")) {
        if (valuelen >= MAX_PATH) {
            s->path_too_long = true;
        } else {
            memcpy(s->path, value, valuelen);
            s->path_len = valuelen;
        }
    } else if (name_is(name, namelen, "content-type")) {
        /* application/grpc, application/grpc+proto, application/grpc;charset=... */
        s->grpc_content_type = valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                               (valuelen == 16 || value[16] == '+' || value[16] == ';');
    } else if (name_is(name, namelen, "authorization")) {
        if (valuelen >= sizeof(s->auth)) {
            s->auth_too_long = true;
        } else {
            memcpy(s->auth, value, valuelen);
            s->auth_len = valuelen;
        }
    } else if (name_is(name, namelen, "grpc-timeout")) {
        s->timeout_ms = rpc_status_parse_timeout((const char *)value, valuelen);
        s->bad_timeout = s->timeout_ms < 0;
    }
    return 0;
}

/* Everything we can decide from the headers alone. */
static void headers_done(struct rpc_stream *s)
{
    s->started_ns = clock_mono_ns();
    if (!s->post) {
        stream_answer_http(s, "405");
        return;
    }
    if (!s->grpc_content_type) {
        stream_answer_http(s, "415");
        return;
    }
    if (s->bad_timeout) {
        stream_answer(s, RPC_INVALID_ARGUMENT, "malformed grpc-timeout", NULL, 0);
        return;
    }
    s->method = s->path_too_long ? NULL : service_method_find(s->path, s->path_len);
    if (s->method == NULL) {
        stream_answer(s, RPC_UNIMPLEMENTED, "unknown method", NULL, 0);
        return;
    }
    if (s->method->role != SVC_ROLE_NONE) {
        const struct svckeys *keys = s->conn->env->svc->shared->svckeys;
        if (s->auth_len == 0 && !s->auth_too_long) {
            stream_answer(s, RPC_UNAUTHENTICATED,
                          "missing service key: send authorization: Bearer <key>", NULL, 0);
            return;
        }
        struct rpc_conn *c = s->conn;
        enum svc_role role = SVC_ROLE_NONE;
        if (s->auth_too_long) {
            role = SVC_ROLE_NONE;
        } else if (c->known_auth_len == s->auth_len &&
                   CRYPTO_memcmp(c->known_auth, s->auth, s->auth_len) == 0) {
            role = c->known_role;
            s->caller = c->known_key;
        } else if (s->auth_len > 7 && strncasecmp(s->auth, "Bearer ", 7) == 0) {
            role = svckeys_check(keys, s->auth + 7, s->auth_len - 7, &s->caller);
            if (role != SVC_ROLE_NONE) {
                memcpy(c->known_auth, s->auth, s->auth_len);
                c->known_auth_len = s->auth_len;
                c->known_role = role;
                c->known_key = s->caller;
            }
        }
        OPENSSL_cleanse(s->auth, s->auth_len);
        if (role == SVC_ROLE_NONE) {
            stream_answer(s, RPC_UNAUTHENTICATED, "unknown service key", NULL, 0);
            return;
        }
        if (!service_role_allows(role, s->method)) {
            stream_answer(s, RPC_PERMISSION_DENIED,
                          "this service key's role (introspect) may not call this method", NULL, 0);
            return;
        }
    }
    if (s->timeout_ms >= 0) {
        s->deadline_ev = evtimer_new(s->conn->env->base, on_deadline, s);
        P2A_ASSERT(s->deadline_ev != NULL);
        struct timeval tv = {s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
        evtimer_add(s->deadline_ev, &tv);
    }
}

static void request_done(struct rpc_stream *s)
{
    s->request_done = true;
    if (s->answered)
        return;
    s->conn->in_flight++; /* until answered (stream_answer) or gone (stream_free) */
    s->conn->active_ms = clock_mono_ms();
    if (s->timeout_ms == 0) {
        stream_answer(s, RPC_DEADLINE_EXCEEDED, "deadline exceeded", NULL, 0);
        return;
    }
    const uint8_t *msg;
    size_t mlen;
    enum rpc_frame_result r = rpc_frame_decode(s->buf, s->len, RPC_MAX_MSG_LEN, &msg, &mlen);
    if (r != RPC_FRAME_OK) {
        int code = r == RPC_FRAME_COMPRESSED  ? RPC_UNIMPLEMENTED
                   : r == RPC_FRAME_TOO_LARGE ? RPC_RESOURCE_EXHAUSTED
                                              : RPC_INVALID_ARGUMENT;
        stream_answer(s, code, s->len == 0 ? "missing request message" : rpc_frame_why(r), NULL, 0);
        return;
    }
    if (s->method->answers_inline) {
        struct rpc_call call = {
            .base.complete = call_complete, .base.caller = s->caller, .stream = s};
        /* the handler answers before returning, which clears s->call (asserted below) */
        // cppcheck-suppress autoVariables
        s->call = &call;
        service_call_method(s->conn->env->svc, s->method, msg, mlen, &call.base);
        P2A_ASSERT(s->call == NULL); /* answered before returning, as promised */
        return;
    }
    struct rpc_call *call = xcalloc(1, sizeof(*call));
    call->base.complete = call_complete;
    call->base.caller = s->caller;
    call->stream = s;
    call->on_heap = true;
    s->call = call;
    service_call_method(s->conn->env->svc, s->method, msg, mlen, &call->base);
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
    (void)flags, (void)ud;
    struct rpc_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s == NULL || s->answered || s->method == NULL)
        return 0; /* refused already (or headers not ended): drop it, flow control credited */
    size_t max = s->method->role == SVC_ROLE_NONE ? RPC_MAX_OPEN_MSG_LEN : RPC_MAX_MSG_LEN;
    if (s->len + len > max + RPC_FRAME_PREFIX) {
        stream_answer(s, RPC_RESOURCE_EXHAUSTED, rpc_frame_why(RPC_FRAME_TOO_LARGE), NULL, 0);
        return 0;
    }
    struct rpc_env *env = s->conn->env;
    if (s->conn->buffered + len > MAX_CONN_BUFFERED) {
        stream_answer(s, RPC_RESOURCE_EXHAUSTED,
                      "too many large requests in flight on this connection", NULL, 0);
        return 0;
    }
    if (env->buffered + len > env->max_buffered) {
        stream_answer(s, RPC_RESOURCE_EXHAUSTED,
                      "server busy: too many request bytes in flight; retry", NULL, 0);
        return 0;
    }
    s->conn->buffered += len;
    env->buffered += len;
    if (s->len + len > s->cap) {
        size_t cap = s->cap * 2 > s->len + len ? s->cap * 2 : s->len + len;
        uint8_t *nb = slab_alloc(cap); /* a long token, an Envoy CheckRequest: recycled too */
        memcpy(nb, s->buf, s->len);
        if (s->buf != s->inline_buf)
            slab_free(s->buf);
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    const uint8_t *m;
    size_t mlen;
    enum rpc_frame_result r = rpc_frame_decode(s->buf, s->len, RPC_MAX_MSG_LEN, &m, &mlen);
    if (r == RPC_FRAME_TOO_LARGE || r == RPC_FRAME_COMPRESSED || r == RPC_FRAME_BAD_FLAG)
        stream_answer(s,
                      r == RPC_FRAME_TOO_LARGE    ? RPC_RESOURCE_EXHAUSTED
                      : r == RPC_FRAME_COMPRESSED ? RPC_UNIMPLEMENTED
                                                  : RPC_INVALID_ARGUMENT,
                      rpc_frame_why(r), NULL, 0);
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct rpc_conn *c = ud;
    c->got_frame = true;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct rpc_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        headers_done(s);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        request_done(s);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
    (void)error_code, (void)ud;
    struct rpc_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s != NULL)
        stream_free(s);
    return 0;
}

/* ---- the connection --------------------------------------------------------------------- */

static pthread_once_t callbacks_once = PTHREAD_ONCE_INIT;

/* Once per process: two workers taking their first connections at the same moment must not
 * both build the table (one would leak, and it is a data race). */
static void make_callbacks(void)
{
    P2A_ASSERT(nghttp2_session_callbacks_new(&callbacks) == 0);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
}

static void init_callbacks(void)
{
    pthread_once(&callbacks_once, make_callbacks);
}

/* Moves every frame nghttp2 has ready into the bufferevent. Returns false on a fatal error. */
static bool conn_send(struct rpc_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (evbuffer_get_length(out) < OUTPUT_HIGH_WATER) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) {
            log_debug("rpc.send_failed", "rpc: send failed: %s", nghttp2_strerror((int)n));
            return false;
        }
        if (n == 0)
            break;
        if (evbuffer_add(out, data, (size_t)n) != 0)
            return false;
    }
    return true;
}

/* After any I/O: free the connection when it has nothing left to do. */
static void conn_check(struct rpc_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) > 0)
        return;
    if (c->closing ||
        (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)))
        conn_free(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct rpc_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->in_recv = true;
    bool ok = true;
    while (ok && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v[8];
        int n = evbuffer_peek(in, -1, NULL, v, 8);
        size_t used = 0;
        for (int i = 0; i < n && i < 8; i++) {
            ssize_t rv = nghttp2_session_mem_recv(c->session, v[i].iov_base, v[i].iov_len);
            if (rv < 0) {
                log_debug("rpc.protocol_error", "rpc: closing connection: %s",
                          nghttp2_strerror((int)rv));
                ok = false;
                break;
            }
            used += (size_t)rv;
        }
        evbuffer_drain(in, used);
    }
    c->in_recv = false;
    if (!ok) {
        /* not HTTP/2, or a protocol error: send the GOAWAY nghttp2 may have queued, then go */
        conn_send(c);
        c->closing = true;
        bufferevent_disable(bev, EV_READ);
        conn_check(c);
        return;
    }
    if (!conn_send(c)) {
        conn_free(c);
        return;
    }
    conn_check(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct rpc_conn *c = arg;
    if (!c->closing && !conn_send(c)) {
        conn_free(c);
        return;
    }
    conn_check(c);
}

static bool start_session(struct rpc_conn *c)
{
    init_callbacks();
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0)
        return false;
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    int rv = nghttp2_session_server_new3(&c->session, callbacks, c, opt, &slab_mem);
    nghttp2_option_del(opt);
    if (rv != 0)
        return false;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BYTES},
    };
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 2) != 0)
        return false;
    return conn_send(c);
}

static void on_event(struct bufferevent *bev, short events, void *arg)
{
    struct rpc_conn *c = arg;
    if (events & BEV_EVENT_CONNECTED) {
        /* TLS handshake done: only h2 may follow */
        const unsigned char *alpn = NULL;
        unsigned int alpnlen = 0;
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        if (ssl != NULL)
            SSL_get0_alpn_selected(ssl, &alpn, &alpnlen);
        if (alpn == NULL || alpnlen != 2 || memcmp(alpn, "h2", 2) != 0 || !start_session(c)) {
            log_debug("rpc.no_alpn_h2", "rpc: TLS client did not negotiate h2");
            conn_free(c);
        }
        return;
    }
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        ERR_clear_error();
        conn_free(c);
    }
}

static void conn_free(struct rpc_conn *c)
{
    while (!LIST_EMPTY(&c->streams))
        stream_free(LIST_FIRST(&c->streams));
    OPENSSL_cleanse(c->known_auth, sizeof(c->known_auth));
    nghttp2_session_del(c->session);
    bufferevent_free(c->bev);
    struct rpc_env *env = c->env;
    LIST_REMOVE(c, link);
    env->nconns--;
    connguard_release(env->guard, c->addr);
    free(c);
    if (env->draining && env->nconns == 0 && env->on_drained != NULL)
        env->on_drained(env->drained_arg);
}

void rpc_conn_accept(struct rpc_env *env, evutil_socket_t fd, const char *addr)
{
    if (!connguard_admit(env->guard, addr)) {
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    struct bufferevent *bev;
    if (env->ssl_ctx != NULL) {
        SSL *ssl = SSL_new(env->ssl_ctx);
        if (ssl == NULL) {
            ERR_clear_error();
            evutil_closesocket(fd);
            connguard_release(env->guard, addr);
            return;
        }
        bev = bufferevent_openssl_socket_new(env->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, opts);
    } else {
        bev = bufferevent_socket_new(env->base, fd, opts);
    }
    if (bev == NULL) {
        evutil_closesocket(fd);
        connguard_release(env->guard, addr);
        return;
    }
    struct rpc_conn *c = xcalloc(1, sizeof(*c));
    c->env = env;
    c->bev = bev;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    c->accepted_ms = c->active_ms = clock_mono_ms();
    LIST_INSERT_HEAD(&env->conns, c, link);
    env->nconns++;
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (env->ssl_ctx == NULL && !start_session(c))
        conn_free(c);
}

void rpc_conn_drain(struct rpc_env *env)
{
    env->draining = true;
    for (struct rpc_conn *c = LIST_FIRST(&env->conns), *next; c != NULL; c = next) {
        next = LIST_NEXT(c, link);
        if (c->session != NULL && !c->closing) {
            nghttp2_submit_shutdown_notice(c->session);
            if (!conn_send(c))
                conn_free(c);
        }
    }
    if (env->nconns == 0 && env->on_drained != NULL)
        env->on_drained(env->drained_arg);
}

void rpc_conn_goaway(struct rpc_env *env)
{
    for (struct rpc_conn *c = LIST_FIRST(&env->conns), *next; c != NULL; c = next) {
        next = LIST_NEXT(c, link);
        if (c->session == NULL) { /* TLS handshake still going: nothing accepted yet */
            conn_free(c);
            continue;
        }
        if (!c->closing)
            nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(c->session),
                                  NGHTTP2_NO_ERROR, NULL, 0);
        if (!conn_send(c))
            conn_free(c);
        else
            conn_check(c); /* frees it once its output is out and no stream is left */
    }
}

void rpc_conn_close_all(struct rpc_env *env)
{
    while (!LIST_EMPTY(&env->conns))
        conn_free(LIST_FIRST(&env->conns)); // NOLINT(clang-analyzer-unix.Malloc): it unlinks itself
    if (env->sweep_ev != NULL)
        event_free(env->sweep_ev);
    env->sweep_ev = NULL;
}

/* ---- deadlines ------------------------------------------------------------------------------ */

/* Ends a connection politely when it has a session (GOAWAY), at once otherwise. */
static void conn_end(struct rpc_conn *c)
{
    if (c->session != NULL && !c->closing) {
        nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
        conn_send(c);
        c->closing = true;
        bufferevent_disable(c->bev, EV_READ);
        conn_check(c);
        return;
    }
    conn_free(c);
}

/* Resets the streams whose request is late; true when any was. */
static bool reset_late_streams(struct rpc_conn *c, int64_t now)
{
    const struct rpc_env *env = c->env;
    bool any = false;
    struct rpc_stream *s;
    LIST_FOREACH(s, &c->streams, link)
    {
        if (s->request_done || s->reset)
            continue;
        bool late = s->started_ns == 0
                        ? now - s->begun_ms > (int64_t)env->header_timeout_s * 1000
                        : now - s->begun_ms >
                              (int64_t)(env->header_timeout_s + env->request_timeout_s) * 1000;
        if (late) {
            s->reset = true;
            s->answered = true; /* nothing more is read into it */
            nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
            any = true;
        }
    }
    return any;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rpc_env *env = arg;
    int64_t now = clock_mono_ms();
    for (struct rpc_conn *c = LIST_FIRST(&env->conns), *next; c != NULL; c = next) {
        next = LIST_NEXT(c, link);
        if (c->closing)
            continue;
        if (!c->got_frame) {
            int limit = env->header_timeout_s < env->idle_timeout_s ? env->header_timeout_s
                                                                    : env->idle_timeout_s;
            if (now - c->accepted_ms > (int64_t)limit * 1000)
                conn_free(c); /* no preface (or no TLS handshake) in time */
            continue;
        }
        if (reset_late_streams(c, now) && !conn_send(c)) {
            conn_free(c);
            continue;
        }
        if (c->in_flight == 0 && LIST_EMPTY(&c->streams) &&
            now - c->active_ms > (int64_t)env->idle_timeout_s * 1000)
            conn_end(c);
    }
}

void rpc_conn_start(struct rpc_env *env)
{
    env->sweep_ev = loop_timer(env->base, 1, true, on_sweep, env);
}
