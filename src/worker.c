/* worker.c -- worker threads (see worker.h).
 *
 * Everything a worker owns is made by worker_init() on the main thread before the thread
 * starts, used only by the thread while it runs, and freed by worker_deinit() on the main
 * thread after it has been joined. The only cross-thread touch is worker_stop(), which
 * activates an event (libevent is set up for pthreads by the server before any base).
 */
#include "worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "lastused.h"
#include "metrics.h"
#include "log.h"
#include "slab.h"
#include "store.h"
#include "tcache.h"
#include "token.h"
#include "xalloc.h"

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
                      int socklen, void *arg)
{
    (void)l, (void)addr, (void)socklen;
    struct worker *w = arg;
    rpc_conn_accept(&w->env, fd);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct worker *w = arg;
    /* EMFILE and friends: log and keep going; the listener stays armed */
    log_warn("rpc.accept_failed", "worker %d: accept failed: %s", w->index,
             evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct worker *w = arg;
    event_base_loopbreak(w->base);
}

static void on_marks_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct worker *w = arg;
    if (lastused_count(w->svc.marks) > 0)
        lastused_inbox_put(w->svc.shared->marks_inbox, w->svc.marks);
}

static void on_keys_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct worker *w = arg;
    const struct keyring *ring = atomic_exchange(&w->next_keys, NULL);
    if (ring == NULL)
        return;
    w->svc.keys = ring;
    token_thread_cleanup(); /* verify contexts and header memos of the old ring */
    if (w->svc.cache != NULL) { /* claims verified with a key that may be gone */
        size_t entries = (size_t)w->svc.shared->cfg->cache_entries;
        tcache_free(w->svc.cache);
        w->svc.cache = tcache_new(entries, (size_t)w->svc.shared->cfg->cache_mb << 20);
    }
    if (w->on_keys != NULL)
        w->on_keys(w->exit_arg);
}

void worker_set_keys(struct worker *w, const struct keyring *ring)
{
    atomic_store(&w->next_keys, ring);
    event_active(w->keys_ev, EV_TIMEOUT, 0);
}

static void on_drained(void *arg)
{
    struct worker *w = arg;
    event_base_loopbreak(w->base);
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
    if (w->listener != NULL) {
        evconnlistener_free(w->listener);
        w->listener = NULL;
    }
    rpc_conn_drain(&w->env);
    struct timeval rtt = {0, 200 * 1000}; /* time for GOAWAY to cross streams on the wire */
    evtimer_add(w->goaway_ev, &rtt);
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
                  &in4->sin_addr) == 1) {
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

p2a_err worker_init(struct worker *w, int index, const struct service_shared *sh,
                    SSL_CTX *ssl_ctx, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    const struct p2a_config *cfg = sh->cfg;
    w->index = index;
    w->base = event_base_new();
    if (w->base == NULL) {
        snprintf(err, errlen, "cannot create an event loop");
        return P2A_ERR_INTERNAL;
    }
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (resolve(cfg->rpc_host, cfg->rpc_port, &ss, &sslen) != 0) {
        snprintf(err, errlen, "PIPE2_AUTH_RPC_LISTEN: %s is not an IP address", cfg->rpc_host);
        return P2A_ERR_INVALID;
    }
    w->listener = evconnlistener_new_bind(
        w->base, on_accept, w,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT,
        1024, (struct sockaddr *)&ss, (int)sslen);
    if (w->listener == NULL) {
        snprintf(err, errlen, "cannot listen on %s: %s", cfg->rpc_listen,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return P2A_ERR_INVALID;
    }
    evconnlistener_set_error_cb(w->listener, on_accept_error);
    w->stop_ev = event_new(w->base, -1, 0, on_stop, w);
    w->drain_ev = event_new(w->base, -1, 0, on_drain, w);
    w->goaway_ev = evtimer_new(w->base, on_goaway, w);
    w->keys_ev = event_new(w->base, -1, 0, on_keys_event, w);
    P2A_ASSERT(w->keys_ev != NULL);
    P2A_ASSERT(w->stop_ev != NULL && w->drain_ev != NULL && w->goaway_ev != NULL);
    char name[16];
    snprintf(name, sizeof(name), "worker%d", index);
    w->svc.shared = sh;
    w->svc.keys = sh->keys;
    w->svc.cache = cfg->cache_entries > 0 ? tcache_new((size_t)cfg->cache_entries,
                                                       (size_t)cfg->cache_mb << 20)
                                          : NULL;
    w->svc.store = store_new(w->base, cfg, name);
    w->svc.marks = lastused_new();
    w->svc.mx = xcalloc(1, sizeof(struct metrics));
    w->marks_ev = event_new(w->base, -1, EV_PERSIST, on_marks_timer, w);
    P2A_ASSERT(w->marks_ev != NULL);
    struct timeval every = {cfg->last_used_flush_s, 0};
    event_add(w->marks_ev, &every);
    w->env.base = w->base;
    w->env.ssl_ctx = ssl_ctx;
    w->env.svc = &w->svc;
    w->env.idle_timeout_s = cfg->idle_timeout_s;
    w->env.on_drained = on_drained;
    w->env.drained_arg = w;
    return P2A_OK;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    token_thread_cleanup();
    slab_thread_cleanup();
    if (w->on_exit != NULL)
        w->on_exit(w->exit_arg);
    return NULL;
}

p2a_err worker_start(struct worker *w)
{
    if (pthread_create(&w->thread, NULL, run, w) != 0)
        return P2A_ERR_INTERNAL;
    w->started = true;
    return P2A_OK;
}

void worker_stop(struct worker *w)
{
    if (w->stop_ev != NULL)
        event_active(w->stop_ev, EV_TIMEOUT, 0);
}

void worker_drain(struct worker *w)
{
    if (w->drain_ev != NULL)
        event_active(w->drain_ev, EV_TIMEOUT, 0);
}

void worker_deinit(struct worker *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = false;
    if (w->listener != NULL)
        evconnlistener_free(w->listener);
    /* the store first: its pending calls answer into connections that still exist */
    store_free(w->svc.store);
    rpc_conn_close_all(&w->env);
    tcache_free(w->svc.cache);
    lastused_free(w->svc.marks);
    free(w->svc.mx);
    if (w->stop_ev != NULL)
        event_free(w->stop_ev);
    if (w->drain_ev != NULL)
        event_free(w->drain_ev);
    if (w->goaway_ev != NULL)
        event_free(w->goaway_ev);
    if (w->keys_ev != NULL)
        event_free(w->keys_ev);
    if (w->marks_ev != NULL)
        event_free(w->marks_ev);
    if (w->base != NULL)
        event_base_free(w->base);
    memset(w, 0, sizeof(*w));
}
