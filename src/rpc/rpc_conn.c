/* rpc_conn.c -- the gRPC transport's connection (see rpc_conn.h): the socket (TLS with ALPN
 * h2, or h2c), its nghttp2 session, output, the worker's bound on streams, deadlines and
 * shutdown. One request on a stream is rpc_stream.c's.
 *
 * DESIGN
 * ------
 * Three levels, as in nghttp2's libevent example: rpc_conn per connection (bufferevent +
 * nghttp2 session), rpc_stream per HTTP/2 stream (the request's headers and message, the
 * response), rpc_call per dispatched call (what the service answers through).
 *
 * Deadlines (a sweep once a second, no timer per stream): the client preface within
 * header_timeout of the accept; each request's headers within header_timeout of its first
 * HEADERS frame and its message within request_timeout after them, else the stream is reset
 * and its bytes freed; a connection with no call in flight and none answered for
 * idle_timeout gets GOAWAY. Trickling bytes, PINGs or WINDOW_UPDATEs keep nothing open.
 *
 * Allocation: streams, responses and nghttp2's own allocations come from the thread's
 * slab (slab.h), so a steady load allocates nothing from malloc.
 *
 * Freeing: a connection is freed only from bufferevent callbacks, never from inside an
 * nghttp2 callback (those only set flags). Output is produced with nghttp2_session_mem_send
 * into the bufferevent, which coalesces every frame ready in one loop turn into one write;
 * we stop producing past OUTPUT_HIGH_WATER, and reading a peer that does not take its
 * answers, and resume both from the write callback. An h2c connection with an accepted key
 * reads past the bufferevent's 4 KiB itself, and alone in its loop turn sends its answers
 * straight to the socket (read_more()).
 *
 * Threading: a connection belongs to its worker's loop.
 */
#include "rpc_conn_internal.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "connguard.h"
#include "log.h"
#include "loop_thread.h"
#include "slab.h"
#include "xalloc.h"

#define OUTPUT_HIGH_WATER (64 * 1024)
#define READ_SLICE (4 * 1024)
#define SEND_BUF (32 * 1024)
#define READ_TURN_MAX (64 * 1024)
#define MAX_CONCURRENT_STREAMS 256

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

/* ---- the worker's bound on streams ------------------------------------------------------- */

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
        rpc_stream_free(oldest);
    }
    /* v is not the connection being read: it may be freed here. One whose peer takes none of
     * our frames (the reset cannot go out, so an answer's stream stays) goes whole. */
    if (!rpc_conn_send(v) || (body && nghttp2_session_get_stream_user_data(v->session, id) != NULL))
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
    rpc_stream_new(c, frame->hd.stream_id);
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
    nghttp2_session_callbacks_set_on_header_callback(callbacks, rpc_stream_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, rpc_stream_on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, rpc_stream_on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, rpc_stream_on_stream_close);
}

static void init_callbacks(void)
{
    pthread_once(&callbacks_once, make_callbacks);
}

/* Sends the frames nghttp2 has ready: into the bufferevent, up to OUTPUT_HIGH_WATER queued;
 * or, when read_more() asks for it (now) and nothing is queued before them, straight from
 * the stack, one send() per SEND_BUF, with no write event (through the bufferevent, each
 * batch of answers costs two epoll_ctl and a loop turn). What the socket does not take (full,
 * or failed) and every frame after it are queued, and the bufferevent's write waits for the
 * socket and reports an error that lasts. Returns false on a fatal error. */
static bool send_frames(struct rpc_conn *c, bool now)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    bool direct = now && evbuffer_get_length(out) == 0;
    uint8_t buf[SEND_BUF];
    size_t len = 0;
    while (evbuffer_get_length(out) < OUTPUT_HIGH_WATER) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) {
            log_debug("rpc.send_failed", "rpc: send failed: %s", nghttp2_strerror((int)n));
            return false;
        }
        if (direct && (n == 0 || len + (size_t)n > sizeof(buf))) {
            ssize_t w = len > 0 ? send(bufferevent_getfd(c->bev), buf, len, MSG_NOSIGNAL) : 0;
            size_t sent = w > 0 ? (size_t)w : 0;
            if (sent < len && evbuffer_add(out, buf + sent, len - sent) != 0)
                return false;
            direct = sent == len && (size_t)n <= sizeof(buf);
            len = 0;
        }
        if (n == 0)
            break;
        if (direct) {
            memcpy(buf + len, data, (size_t)n);
            len += (size_t)n;
        } else if (evbuffer_add(out, data, (size_t)n) != 0) {
            return false;
        }
    }
    return true;
}

bool rpc_conn_send(struct rpc_conn *c)
{
    return send_frames(c, false);
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

/* Hands n bytes to nghttp2. False on a protocol error (the connection must go). */
static bool feed(struct rpc_conn *c, const uint8_t *p, size_t n)
{
    ssize_t rv = nghttp2_session_mem_recv(c->session, p, n);
    if (rv < 0)
        log_debug("rpc.protocol_error", "rpc: closing connection: %s", nghttp2_strerror((int)rv));
    return rv >= 0;
}

/* The rest of what has arrived on an h2c socket, read by us: libevent 2.1's bufferevent reads
 * at most 4 KiB a loop turn (EVBUFFER_MAX_READ), and a turn costs epoll_wait, ioctl, readv and
 * the write event's two epoll_ctl, so a busy connection paid them every few requests. Only
 * for a connection whose caller's key was accepted (an MCP server, a gateway: callers we
 * gave a key): every connection ready in a turn waits for those served before it, so an
 * anonymous one keeps the bufferevent's 4 KiB a turn (four anonymous connections flooding
 * at 64 KiB a turn made another's Introspect wait 5x longer). One read of up to
 * READ_TURN_MAX a turn, none while the output is past OUTPUT_HIGH_WATER, straight from the
 * stack to nghttp2.
 *
 * Alone in the loop turn, the connection is fed a READ_SLICE at a time and its answers are
 * sent straight to the socket before the next: a client with one connection (what
 * a gRPC channel is) gets them while we work on its next requests, as it did between loop
 * turns; fed all at once, its requests and our answers took turns and either side waited
 * (-c 1 -m 32: 160,000 req/s against 290,000 before the big reads, 320,000 sliced). With
 * other connections in the turn, their work is what this one's client overlaps with, and the
 * answers go out in one write at the turn's end.
 *
 * The end of the input (the peer shut its side, or reset) is left to the bufferevent, which
 * finds it on its next read and reports it after the answers already made are written, as
 * for a TLS connection. False on a protocol error. */
static bool read_more(struct rpc_conn *c)
{
    bool alone = event_base_get_num_events(c->env->base, EVENT_BASE_COUNT_ACTIVE) == 0;
    bool ok = true;
    if (send_frames(c, alone) && /* a failure is on_read's own send's to find again */
        evbuffer_get_length(bufferevent_get_output(c->bev)) < OUTPUT_HIGH_WATER) {
        uint8_t buf[READ_TURN_MAX];
        ssize_t r = recv(bufferevent_getfd(c->bev), buf, sizeof(buf), 0);
        size_t slice = alone ? READ_SLICE : sizeof(buf);
        /* r <= 0: nothing more now, or the end (the bufferevent's to report) */
        for (size_t off = 0; ok && r > 0 && off < (size_t)r; off += slice) {
            size_t n = (size_t)r - off < slice ? (size_t)r - off : slice;
            c->in_recv = true;
            ok = feed(c, buf + off, n);
            c->in_recv = false;
            if (ok && !send_frames(c, alone))
                break;
        }
    }
    return ok;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct rpc_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->env->turn_ns = clock_mono_ns(); /* the streams' clock for what this read brings */
    c->env->turn_now = clock_now();
    c->in_recv = true;
    bool ok = true;
    while (ok && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v[8];
        int n = evbuffer_peek(in, -1, NULL, v, 8);
        size_t used = 0;
        for (int i = 0; i < n && i < 8 && ok; i++) {
            ok = feed(c, v[i].iov_base, v[i].iov_len);
            used += v[i].iov_len;
        }
        evbuffer_drain(in, used);
    }
    c->in_recv = false;
    if (ok && c->env->ssl_ctx == NULL && c->known_auth_len > 0)
        ok = read_more(c);
    if (!ok) {
        /* not HTTP/2, or a protocol error: send the GOAWAY nghttp2 may have queued, then go */
        rpc_conn_send(c);
        c->closing = true;
        bufferevent_disable(bev, EV_READ);
        conn_check(c);
        return;
    }
    if (!rpc_conn_send(c)) {
        conn_free(c);
        return;
    }
    /* A peer that does not take its answers is not read until they have gone (on_write):
     * what it sends makes frames (a refused stream's RST_STREAM, SETTINGS and PING ACKs),
     * which nghttp2 holds without bound behind the full output (a peer that neither read nor
     * acknowledged our SETTINGS, sending HEADERS past its 256 streams, grew the RSS 20 MB a
     * second, without a key). */
    if (evbuffer_get_length(bufferevent_get_output(bev)) >= OUTPUT_HIGH_WATER)
        bufferevent_disable(bev, EV_READ);
    conn_check(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct rpc_conn *c = arg;
    if (c->closing) {
        conn_check(c);
        return;
    }
    if (!rpc_conn_send(c)) {
        conn_free(c);
        return;
    }
    if (evbuffer_get_length(bufferevent_get_output(bev)) < OUTPUT_HIGH_WATER &&
        !(bufferevent_get_enabled(bev) & EV_READ))
        bufferevent_enable(bev, EV_READ); /* its answers have gone: read it again */
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
    return rpc_conn_send(c);
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
        rpc_stream_free(LIST_FIRST(&c->streams));
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
            if (!rpc_conn_send(c))
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
        if (!rpc_conn_send(c))
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
        rpc_conn_send(c);
        c->closing = true;
        bufferevent_disable(c->bev, EV_READ);
        conn_check(c);
        return;
    }
    conn_free(c);
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
        if (rpc_stream_reset_late(c, now) && !rpc_conn_send(c)) {
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
