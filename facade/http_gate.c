/* http_gate.c -- the gate of the public HTTP port (see http_gate.h for what it promises).
 *
 * One struct gconn per connection, owned by its filter bufferevent (freed by the filter's
 * free_context when evhttp frees the connection). Its socket is known only once evhttp has
 * set it, after the bevcb returns: new connections wait on a list for the post-accept event
 * (activated from the bevcb, run in the same loop turn) that reads the peer and applies the
 * bounds. Facade thread only.
 */
#include "http_gate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "clock.h"
#include "config.h"
#include "connguard.h"
#include "h1scan.h"
#include "http_reply.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

struct http_gate;

struct gconn {
    LIST_ENTRY(gconn) link; /* every connection of the gate, the newest first */
    struct http_gate *g;
    struct bufferevent *under, *filter;
    struct event *deadline_ev;
    struct event *kick_ev; /* pushes evhttp's output through the filter (see on_output) */
    bool fresh;            /* not yet through the post-accept check */
    bool counted;          /* admitted by connguard: release at the end */
    bool dead;             /* shut down */
    bool waiting;          /* a response is owed: no deadline until it starts */
    bool refuse_after;     /* a refused request follows one owed a response: refuse after it */
    char addr[NETADDR_MAX];
    struct h1scan scan;
};

struct http_gate {
    struct http_gate *next_gate;
    const struct p2a_config *cfg;
    struct event_base *base;
    struct evconnlistener *listener;
    struct accept_guard accept;
    struct connguard *guard;
    struct event *post_ev;
    LIST_HEAD(, gconn) conns;
    size_t nconns, max_conns; /* every connection evhttp holds, refused ones included */
    bool paused;              /* at max_conns: the listener takes no more until one ends */
    struct log_limit deadline_log, refuse_log;
    uint64_t deadlines, heads_refused;
};

static void kill_conn(struct gconn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    evutil_socket_t fd = bufferevent_getfd(c->under);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    if (c->deadline_ev != NULL)
        event_del(c->deadline_ev);
}

static void arm(struct gconn *c, int seconds)
{
    struct timeval tv = {seconds, 0};
    evtimer_add(c->deadline_ev, &tv);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct gconn *c = arg;
    c->g->deadlines++;
    unsigned long long passed;
    if (log_every_second(&c->g->deadline_log, &passed))
        log_info("http.deadline",
                 "closed a connection from %s that did not send its request "
                 "in time (%llu more since the last line)",
                 c->addr, passed);
    kill_conn(c);
}

/* Answers a refused head on the socket itself and shuts it: evhttp never sees the request. */
static void refuse(struct gconn *c)
{
    struct http_gate *g = c->g;
    g->heads_refused++;
    const char *reason = c->scan.status == 411   ? "Length Required"
                         : c->scan.status == 431 ? "Request Header Fields Too Large"
                                                 : "Bad Request";
    char *body = http_error_json("invalid_request", c->scan.why), resp[512];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
                     c->scan.status, reason, strlen(body), body);
    free(body);
    evutil_socket_t fd = bufferevent_getfd(c->under);
    if (fd >= 0 && n > 0 && (size_t)n < sizeof(resp) &&
        send(fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_debug("http.refuse_failed", "could not send the 400 to %s", c->addr);
    unsigned long long passed;
    if (log_every_second(&g->refuse_log, &passed))
        log_info("http.refused", "refused a request from %s: %s (%llu more since the last line)",
                 c->addr, c->scan.why, passed);
    kill_conn(c);
}

static enum bufferevent_filter_result in_filter(struct evbuffer *src, struct evbuffer *dst,
                                                ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                void *ctx)
{
    (void)limit, (void)mode;
    struct gconn *c = ctx;
    if (c->dead) {
        evbuffer_drain(src, evbuffer_get_length(src));
        return BEV_OK;
    }
    struct evbuffer_iovec v[4];
    while (evbuffer_get_length(src) > 0) {
        int nv = evbuffer_peek(src, -1, NULL, v, 4);
        size_t passed = 0;
        bool stop = false;
        for (int i = 0; i < nv && i < 4 && !stop; i++) {
            const unsigned char *p = v[i].iov_base;
            size_t len = v[i].iov_len, off = 0;
            while (off < len && !stop) {
                bool was_idle = c->scan.state == H1_IDLE;
                size_t used = 0;
                enum h1_event ev = h1scan_feed(&c->scan, p + off, len - off, &used);
                if (was_idle && c->scan.state != H1_IDLE && !c->waiting)
                    arm(c, c->g->cfg->header_timeout_s); /* a new head starts */
                off += used;
                passed += used;
                if (ev == H1_REFUSED) {
                    stop = true;
                } else if (ev == H1_HEAD_DONE) {
                    c->waiting = c->scan.state == H1_IDLE;
                    if (c->waiting)
                        event_del(c->deadline_ev);
                    else
                        arm(c, c->g->cfg->request_timeout_s);
                } else if (ev == H1_BODY_DONE) {
                    c->waiting = true;
                    event_del(c->deadline_ev);
                }
            }
        }
        if (stop) {
            /* the requests before the refused one get their answers first */
            evbuffer_remove_buffer(src, dst, passed);
            evbuffer_drain(src, evbuffer_get_length(src));
            if (c->waiting)
                c->refuse_after = true;
            else
                refuse(c);
            return BEV_OK;
        }
        evbuffer_remove_buffer(src, dst, passed);
    }
    return BEV_OK;
}

/* Response bytes: the owed response has started; the next head has HEADER_TIMEOUT from now
 * (an idle keep-alive connection is closed after that), a pipelined one begun meanwhile
 * too. */

static enum bufferevent_filter_result out_filter(struct evbuffer *src, struct evbuffer *dst,
                                                 ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                 void *ctx)
{
    (void)limit, (void)mode;
    struct gconn *c = ctx;
    if (c->waiting && !c->dead) {
        c->waiting = false;
        /* the next request's clock starts now: its head (begun or not while this answer
         * was owed: a pipelined one) within HEADER_TIMEOUT, a body it began within
         * REQUEST_TIMEOUT; never evhttp's longer read timeout */
        arm(c,
            c->scan.state == H1_BODY ? c->g->cfg->request_timeout_s : c->g->cfg->header_timeout_s);
    }
    /* Straight to the socket when nothing waits before it: evhttp takes the filter's empty
     * buffer as "sent", and for a response that closes the connection it shuts the socket
     * at once, which would lose what still sat in the socket bufferevent. */
    evutil_socket_t fd = bufferevent_getfd(c->under);
    if (fd >= 0 && evbuffer_get_length(dst) == 0)
        while (evbuffer_get_length(src) > 0 && evbuffer_write(src, fd) > 0)
            ;
    evbuffer_add_buffer(dst, src);
    return BEV_OK;
}

/* libevent 2.1's filter processes its output when data is added while writing is enabled;
 * evhttp adds a response first and enables writing after, and enabling does not process
 * what waits. So: when evhttp adds output, flush the filter once evhttp's call is over. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct gconn *c = arg;
    bufferevent_flush(c->filter, EV_WRITE, BEV_NORMAL);
    /* evhttp writes a whole response in one call, before this runs: it is out now */
    if (c->refuse_after && !c->waiting && !c->dead)
        refuse(c);
}

static void on_output(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    struct gconn *c = arg;
    if (info->n_added > 0)
        event_active(c->kick_ev, EV_TIMEOUT, 0);
}

/* The filter's free_context: libevent may run it late (finalizers), even after the gate is
 * gone; http_gate_free() then has detached c already. */
static void conn_free(void *ctx)
{
    struct gconn *c = ctx;
    struct http_gate *g = c->g;
    if (g != NULL) {
        if (c->counted)
            connguard_release(g->guard, c->addr);
        LIST_REMOVE(c, link);
        if (--g->nconns < g->max_conns && g->paused) {
            g->paused = false;
            evconnlistener_enable(g->listener);
        }
    }
    if (c->deadline_ev != NULL)
        event_free(c->deadline_ev);
    if (c->kick_ev != NULL)
        event_free(c->kick_ev);
    free(c);
}

static struct bufferevent *on_new_conn(struct event_base *base, void *arg)
{
    struct http_gate *g = arg;
    struct gconn *c = xcalloc(1, sizeof(*c));
    c->g = g;
    c->fresh = true;
    h1scan_init(&c->scan);
    snprintf(c->addr, sizeof(c->addr), "unknown");
    c->deadline_ev = evtimer_new(base, on_deadline, c);
    c->kick_ev = event_new(base, -1, 0, on_kick, c);
    c->under = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct bufferevent *f = c->under == NULL || c->deadline_ev == NULL || c->kick_ev == NULL
                                ? NULL
                                : bufferevent_filter_new(c->under, in_filter, out_filter,
                                                         BEV_OPT_CLOSE_ON_FREE, conn_free, c);
    P2A_ASSERT(f != NULL); /* out of memory: libevent allocates through slab, which aborts */
    c->filter = f;
    P2A_ASSERT(evbuffer_add_cb(bufferevent_get_output(f), on_output, c) != NULL);
    LIST_INSERT_HEAD(&g->conns, c, link);
    event_active(g->post_ev, EV_TIMEOUT, 0);
    /* A refused connection holds its descriptor until evhttp has seen it end: count every
     * one, and stop accepting at the bound, so that a flood cannot take the descriptors
     * the RPC port needs (libevent ends its accept loop when the callback disables it). */
    if (++g->nconns >= g->max_conns && !g->paused) {
        g->paused = true;
        evconnlistener_disable(g->listener);
    }
    return f;
}

/* Same loop turn as the accepts: the sockets are set now. */
static void on_post_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct http_gate *g = arg;
    for (struct gconn *c = LIST_FIRST(&g->conns); c != NULL && c->fresh; c = LIST_NEXT(c, link)) {
        c->fresh = false;
        evutil_socket_t s = bufferevent_getfd(c->under);
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (s >= 0 && getpeername(s, (struct sockaddr *)&ss, &len) == 0)
            connguard_peer((struct sockaddr *)&ss, c->addr);
        c->counted = connguard_admit(g->guard, c->addr);
        if (!c->counted)
            kill_conn(c);
        else
            arm(c, g->cfg->header_timeout_s);
    }
}

/* evhttp owns the listener's user data (its accept callback's argument, which the error
 * callback gets too): the gate of a listener is found here instead. Gates are made before
 * the facade thread starts and freed after it has stopped. */
static struct http_gate *gates;

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)arg; /* evhttp's */
    for (struct http_gate *g = gates; g != NULL; g = g->next_gate)
        if (g->listener == l)
            accept_guard_on_error(&g->accept);
}

p2a_err http_gate_new(struct event_base *base, struct evhttp *http, const struct p2a_config *cfg,
                      struct http_gate **out, char *err, size_t errlen)
{
    struct http_gate *g = xcalloc(1, sizeof(*g));
    g->cfg = cfg;
    g->base = base;
    g->max_conns = cfg->http_max_conns > 0 ? (size_t)cfg->http_max_conns : connguard_default_max(4);
    g->guard = connguard_new("http", g->max_conns, (size_t)cfg->http_max_conns_per_addr,
                             cfg->proxies, cfg->nproxies);
    g->post_ev = event_new(base, -1, 0, on_post_accept, g);
    P2A_ASSERT(g->post_ev != NULL);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM,
                                    .ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICHOST};
    struct evutil_addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%d", cfg->http_port);
    if (evutil_getaddrinfo(strcmp(cfg->http_host, "localhost") == 0 ? "127.0.0.1" : cfg->http_host,
                           port, &hints, &ai) == 0 &&
        ai != NULL)
        g->listener = evconnlistener_new_bind(
            base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
            1024, ai->ai_addr, (int)ai->ai_addrlen);
    if (ai != NULL)
        evutil_freeaddrinfo(ai);
    if (g->listener == NULL || evhttp_bind_listener(http, g->listener) == NULL) {
        snprintf(err, errlen, "cannot listen on PIPE2_AUTH_HTTP_LISTEN %s", cfg->http_listen);
        if (g->listener != NULL)
            evconnlistener_free(g->listener);
        g->listener = NULL;
        http_gate_free(g);
        return P2A_ERR_INVALID;
    }
    evconnlistener_set_error_cb(g->listener, on_accept_error);
    accept_guard_init(&g->accept, base, g->listener, "http");
    g->next_gate = gates;
    gates = g;
    evhttp_set_bevcb(http, on_new_conn, g);
    *out = g;
    return P2A_OK;
}

void http_gate_free(struct http_gate *g)
{
    if (g == NULL)
        return;
    for (struct http_gate **p = &gates; *p != NULL; p = &(*p)->next_gate)
        if (*p == g) {
            *p = g->next_gate;
            break;
        }
    /* evhttp_free (before this) freed the listener and every connection, but the filters'
     * finalizers may not have run yet: what they would still touch is detached here */
    while (!LIST_EMPTY(&g->conns)) {
        struct gconn *c = LIST_FIRST(&g->conns);
        LIST_REMOVE(c, link);
        c->g = NULL;
        event_free(c->deadline_ev);
        event_free(c->kick_ev);
        c->deadline_ev = c->kick_ev = NULL;
    }
    if (g->listener != NULL)
        accept_guard_deinit(&g->accept);
    if (g->post_ev != NULL)
        event_free(g->post_ev);
    connguard_free(g->guard);
    free(g);
}

void http_gate_metrics(struct http_gate *g, struct mbuf *out)
{
    mbuf_printf(out,
                "# HELP p2a_http_connections Open connections on the public HTTP port.\n"
                "# TYPE p2a_http_connections gauge\n"
                "p2a_http_connections %zu\n"
                "# HELP p2a_http_connections_refused_total Connections closed at accept: over "
                "the total or per-address bound.\n"
                "# TYPE p2a_http_connections_refused_total counter\n"
                "p2a_http_connections_refused_total %llu\n"
                "# HELP p2a_http_deadlines_total Connections closed for not sending a request "
                "in time.\n"
                "# TYPE p2a_http_deadlines_total counter\n"
                "p2a_http_deadlines_total %llu\n"
                "# HELP p2a_http_heads_refused_total Requests refused for their framing or "
                "head (400, 411, 431).\n"
                "# TYPE p2a_http_heads_refused_total counter\n"
                "p2a_http_heads_refused_total %llu\n"
                "# HELP p2a_http_descriptors_exhausted_total Times accept found the descriptor "
                "table full.\n"
                "# TYPE p2a_http_descriptors_exhausted_total counter\n"
                "p2a_http_descriptors_exhausted_total %llu\n",
                connguard_open(g->guard), (unsigned long long)connguard_refused(g->guard),
                (unsigned long long)g->deadlines, (unsigned long long)g->heads_refused,
                (unsigned long long)g->accept.emfile);
}
