/* rpc_stream.c -- one gRPC call on an HTTP/2 stream (see rpc_conn.c for the connection):
 * its headers checked as soon as they end (method, content type, :path, grpc-timeout,
 * service key and role), its message buffered within the bounds and unframed at END_STREAM,
 * the method run (service_call_method), and the answer: HEADERS, one DATA with the framed
 * message, then trailers with grpc-status; an error is one HEADERS frame with grpc-status
 * and grpc-message (Trailers-Only).
 *
 * A refused call is answered at once, without waiting for its body, and its DATA is never
 * buffered. DATA of an accepted call is buffered up to RPC_MAX_MSG_LEN (RPC_MAX_OPEN_MSG_LEN
 * for the methods that need no key), within the connection's and the worker's bounds.
 *
 * Calls that wait on Redis may outlive their stream (the client resets it, the deadline
 * passes, the connection drops): the stream and the call point at each other, and whichever
 * goes first clears the other's pointer. A call whose stream is gone is answered into the
 * void and freed.
 *
 * Threading: a stream belongs to its connection's worker loop.
 */
#include "rpc_conn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "audit.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "rpc_frame.h"
#include "rpc_status.h"
#include "slab.h"
#include "xalloc.h"

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

/* Every admin call is in the audit trail, named by its service key (the hot path's methods
 * need the introspect role only: they are not). One the key's role may not make is
 * admin.refused: aggregated, since a low-privilege key may send as many as it likes. */
static void audit_admin_call(const struct rpc_stream *s, int mi, int status)
{
    char detail[96];
    snprintf(detail, sizeof(detail), "%s: gRPC status %d", service_method_name(mi), status);
    bool allowed = service_role_allows(s->caller->role, s->method);
    service_audit(s->caller, (struct audit_in){.type = allowed ? "admin.call" : "admin.refused",
                                               .address = s->conn->addr,
                                               .outcome = status == RPC_OK ? "success" : "failure",
                                               .detail = detail});
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
    int64_t now_ns = clock_mono_ns(); /* the one read of the clock an answer takes */
    if (s->request_done && s->method != NULL) {
        s->conn->in_flight--;
        s->conn->active_ms = now_ns / 1000000;
    }
    int64_t took_ns = now_ns - s->started_ns;
    int mi = service_method_index(s->method);
    metrics_rpc(s->conn->env->svc->mx, mi, status, took_ns);
    /* an access log line for the admin methods; never per Introspect or health check (the
     * hot path: its counts and latencies are in /metrics) */
    if (s->method != NULL && !s->method->answers_inline && log_enabled(LOG_INFO))
        log_info("rpc.access", "%s answered gRPC status %d in %.3f ms (stream %d)",
                 service_method_name(mi), status, (double)took_ns / 1e6, s->id);
    if (s->method != NULL && s->method->role == SVC_ROLE_ADMIN && s->caller != NULL)
        audit_admin_call(s, mi, status);
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
        rpc_conn_send(s->conn);
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

/* ---- the request ---------------------------------------------------------------------------- */

void rpc_stream_new(struct rpc_conn *c, int32_t id)
{
    struct rpc_stream *s = slab_calloc(1, sizeof(*s));
    s->conn = c;
    s->id = id;
    s->timeout_ms = -1;
    s->begun_ms = c->env->turn_ns / 1000000;
    s->buf = s->inline_buf;
    s->cap = sizeof(s->inline_buf);
    LIST_INSERT_HEAD(&c->streams, s, link);
    nghttp2_session_set_stream_user_data(c->session, s->id, s);
}

void rpc_stream_free(struct rpc_stream *s)
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

static bool name_is(const uint8_t *name, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

int rpc_stream_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *ud)
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
    s->started_ns = s->conn->env->turn_ns;
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
    s->conn->in_flight++; /* until answered (stream_answer) or gone (rpc_stream_free) */
    s->conn->active_ms = s->conn->env->turn_ns / 1000000;
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
        struct rpc_call call = {.base.complete = call_complete,
                                .base.caller = s->caller,
                                .base.now = s->conn->env->turn_now,
                                .stream = s};
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
    call->base.now = s->conn->env->turn_now;
    call->stream = s;
    call->on_heap = true;
    s->call = call;
    service_call_method(s->conn->env->svc, s->method, msg, mlen, &call->base);
}

int rpc_stream_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
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

int rpc_stream_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
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

int rpc_stream_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                               void *ud)
{
    (void)error_code, (void)ud;
    struct rpc_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s != NULL)
        rpc_stream_free(s);
    return 0;
}

/* ---- deadlines ------------------------------------------------------------------------------ */

bool rpc_stream_reset_late(struct rpc_conn *c, int64_t now)
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
