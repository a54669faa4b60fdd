/* worker.c -- worker threads (see worker.h).
 *
 * A worker is a loop thread (loop_thread.h): what it owns is made by worker_init() on the
 * main thread before the thread starts, used only by the thread while it runs, and freed by
 * worker_deinit() after it has been joined. Other threads reach it only by activating its
 * events: stop and keys (loop_thread.c), drain (worker_drain), and the marks it hands to the
 * shared inbox (lastused.h, locked).
 */
#include "worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "connguard.h"
#include "audit.h"
#include "lastused.h"
#include "metrics.h"
#include "log.h"
#include "slab.h"
#include "store.h"
#include "tcache.h"
#include "token.h"
#include "xalloc.h"

static void close_listeners(struct worker *w);

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
                      int socklen, void *arg)
{
    (void)l, (void)socklen;
    struct worker *w = arg;
    char peer[NETADDR_MAX];
    connguard_peer(addr, peer);
    accept_guard_ok(&w->accept);
    rpc_conn_accept(&w->env, fd, peer);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct worker *w = arg;
    accept_guard_on_error(&w->accept);
}

static void on_fwd_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
                          int socklen, void *arg)
{
    (void)l, (void)socklen;
    struct worker *w = arg;
    char peer[NETADDR_MAX];
    connguard_peer(addr, peer);
    accept_guard_ok(&w->fwd_accept);
    authz_http_accept(&w->fenv, fd, peer);
}

static void on_fwd_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct worker *w = arg;
    accept_guard_on_error(&w->fwd_accept);
}

static void on_marks_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct worker *w = arg;
    if (lastused_count(w->svc.marks) > 0)
        lastused_inbox_put(w->svc.shared->marks_inbox, w->svc.marks);
    if (w->svc.refused->n > 0)
        audit_refusals_emit(w->svc.refused); /* one event per token, off the hot path */
}

/* On the worker's thread, once it has switched keyrings: claims verified with a key that
 * may be gone are dropped with the cache. */
static void on_keys(void *arg)
{
    struct worker *w = arg;
    w->svc.keys = w->lt.keys;
    if (w->svc.cache != NULL) {
        size_t entries = (size_t)w->svc.shared->cfg->cache_entries;
        tcache_free(w->svc.cache);
        w->svc.cache = tcache_new(entries, (size_t)w->svc.shared->cfg->cache_mb << 20);
    }
}

/* The loop ends once both ports' connections are gone. */
static void on_rpc_drained(void *arg)
{
    struct worker *w = arg;
    w->rpc_drained = true;
    if (w->fwd_drained)
        event_base_loopbreak(w->lt.base);
}

static void on_fwd_drained(void *arg)
{
    struct worker *w = arg;
    w->fwd_drained = true;
    if (w->rpc_drained)
        event_base_loopbreak(w->lt.base);
}

static void on_goaway(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct worker *w = arg;
    rpc_conn_goaway(&w->env);
}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct worker *w = arg;
    close_listeners(w);
    authz_http_drain(&w->fenv);
    rpc_conn_drain(&w->env);
    struct timeval rtt = {0, 200 * 1000}; /* time for GOAWAY to cross streams on the wire */
    evtimer_add(w->goaway_ev, &rtt);
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &in4->sin_addr) ==
        1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *len = sizeof(*in4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*in6);
        return 0;
    }
    return -1;
}

static void close_listeners(struct worker *w)
{
    if (w->listener != NULL) {
        accept_guard_deinit(&w->accept);
        evconnlistener_free(w->listener);
        w->listener = NULL;
    }
    if (w->fwd_listener != NULL) {
        accept_guard_deinit(&w->fwd_accept);
        evconnlistener_free(w->fwd_listener);
        w->fwd_listener = NULL;
    }
}

/* A SO_REUSEPORT listener on host:port (named by setting), or NULL with err written. */
static struct evconnlistener *listen_on(struct worker *w, const char *setting, const char *host,
                                        int port, evconnlistener_cb cb,
                                        evconnlistener_errorcb errcb, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (resolve(host, port, &ss, &sslen) != 0) {
        snprintf(err, errlen, "%s: %s is not an IP address", setting, host);
        return NULL;
    }
    struct evconnlistener *l = evconnlistener_new_bind(
        w->lt.base, cb, w,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT,
        1024, (struct sockaddr *)&ss, (int)sslen);
    if (l == NULL) {
        snprintf(err, errlen, "cannot listen on %s %s:%d: %s", setting, host, port,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return NULL;
    }
    evconnlistener_set_error_cb(l, errcb);
    return l;
}

p2a_err worker_init(struct worker *w, int index, const struct service_shared *sh, SSL_CTX *ssl_ctx,
                    struct connguard *guard, struct connguard *fwd_guard, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    const struct p2a_config *cfg = sh->cfg;
    w->index = index;
    snprintf(w->name, sizeof(w->name), "worker%d", index);
    if (loop_thread_init(&w->lt, w->name, sh->keys) != P2A_OK) {
        snprintf(err, errlen, "cannot create an event loop");
        return P2A_ERR_INTERNAL;
    }
    w->lt.on_keys = on_keys;
    w->lt.arg = w;
    w->listener = listen_on(w, "PIPE2_AUTH_RPC_LISTEN", cfg->rpc_host, cfg->rpc_port, on_accept,
                            on_accept_error, err, errlen);
    if (w->listener == NULL)
        return P2A_ERR_INVALID;
    accept_guard_init(&w->accept, w->lt.base, w->listener, w->name);
    if (cfg->fwd_host != NULL) {
        w->fwd_listener = listen_on(w, "PIPE2_AUTH_FORWARD_AUTH_LISTEN", cfg->fwd_host,
                                    cfg->fwd_port, on_fwd_accept, on_fwd_accept_error, err, errlen);
        if (w->fwd_listener == NULL)
            return P2A_ERR_INVALID;
        accept_guard_init(&w->fwd_accept, w->lt.base, w->fwd_listener, w->name);
    }
    w->drain_ev = event_new(w->lt.base, -1, 0, on_drain, w);
    w->goaway_ev = evtimer_new(w->lt.base, on_goaway, w);
    P2A_ASSERT(w->drain_ev != NULL && w->goaway_ev != NULL);
    w->svc.shared = sh;
    w->svc.keys = sh->keys;
    w->svc.cache = cfg->cache_entries > 0
                       ? tcache_new((size_t)cfg->cache_entries, (size_t)cfg->cache_mb << 20)
                       : NULL;
    w->svc.store = store_new(w->lt.base, cfg, w->name);
    w->svc.marks = lastused_new();
    w->svc.refused = xcalloc(1, sizeof(*w->svc.refused));
    w->svc.mx = xcalloc(1, sizeof(struct metrics));
    w->marks_ev = event_new(w->lt.base, -1, EV_PERSIST, on_marks_timer, w);
    P2A_ASSERT(w->marks_ev != NULL);
    struct timeval every = {cfg->last_used_flush_s, 0};
    event_add(w->marks_ev, &every);
    w->env.base = w->lt.base;
    w->env.ssl_ctx = ssl_ctx;
    w->env.svc = &w->svc;
    w->env.idle_timeout_s = cfg->idle_timeout_s;
    w->env.header_timeout_s = cfg->header_timeout_s;
    w->env.request_timeout_s = cfg->request_timeout_s;
    w->env.guard = guard;
    w->env.max_buffered = WORKER_MAX_BUFFERED;
    w->env.max_streams = WORKER_MAX_STREAMS;
    rpc_conn_start(&w->env);
    w->env.on_drained = on_rpc_drained;
    w->env.drained_arg = w;
    w->fenv.base = w->lt.base;
    w->fenv.svc = &w->svc;
    w->fenv.guard = fwd_guard;
    w->fenv.idle_timeout_s = cfg->idle_timeout_s;
    w->fenv.header_timeout_s = cfg->header_timeout_s;
    LIST_INIT(&w->fenv.conns);
    w->fenv.on_drained = on_fwd_drained;
    w->fenv.drained_arg = w;
    return P2A_OK;
}

p2a_err worker_start(struct worker *w)
{
    return loop_thread_start(&w->lt);
}

void worker_drain(struct worker *w)
{
    if (w->drain_ev != NULL)
        event_active(w->drain_ev, EV_TIMEOUT, 0);
}

void worker_deinit(struct worker *w)
{
    loop_thread_join(&w->lt);
    close_listeners(w);
    /* the store first: its pending calls answer into connections that still exist */
    store_free(w->svc.store);
    rpc_conn_close_all(&w->env);
    authz_http_close_all(&w->fenv);
    tcache_free(w->svc.cache);
    lastused_free(w->svc.marks);
    free(w->svc.refused);
    free(w->svc.mx);
    if (w->drain_ev != NULL)
        event_free(w->drain_ev);
    if (w->goaway_ev != NULL)
        event_free(w->goaway_ev);
    if (w->marks_ev != NULL)
        event_free(w->marks_ev);
    loop_thread_deinit(&w->lt);
    memset(w, 0, sizeof(*w));
}

void workers_metrics(const struct worker *w, int n, struct mbuf *out)
{
    struct metrics *mx[256];
    size_t k = 0;
    for (int i = 0; i < n && k < 256; i++)
        mx[k++] = w[i].svc.mx;
    metrics_render(out, mx, k, service_method_name);
}
