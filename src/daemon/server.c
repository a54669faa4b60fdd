/* server.c -- start-up, the threads, and shutdown.
 *
 * Threads, each with its own event loop and its own Redis connection, so that none waits
 * behind another's work (loop_thread.h):
 *   - workers (worker.c): the RPC port; Introspect from memory.
 *   - the revocation view (revsync.c): the subscriber, the repair poll, the sweep, and
 *     nothing else, so that no load on a public port can delay it; the staleness bound
 *     measures this thread's progress (health says NOT_SERVING and Introspect UNAVAILABLE
 *     until the set is loaded, and whenever it is older than the bound).
 *   - the facade (facade/): the HTTP/1.1 listeners, at a lower priority (nice 10) than the
 *     workers and the view; password hashing goes to the hash pool (hashpool.h:
 *     PIPE2_AUTH_HASH_THREADS threads at nice 19, a bounded queue).
 *   - main (this file): signals, start-up, shutdown, and the side jobs: the last-used
 *     flusher (flusher.c), key rotation (keywatch.c), the audit trail's writer
 *     (store_audit.h: every second, the events the threads queued to stdout and Redis),
 *     giving malloc's free pages back.
 * /metrics is rendered on the facade's thread: each module renders its own (the workers'
 * counters, the revocation view, the flusher, the facade); this file adds the Redis
 * connections and readiness.
 * Shutdown (SIGTERM/SIGINT): not ready at once, workers drain; then the facade, the hash
 * pool and the revocation view stop, the audit events and the marks are written one last
 * time, exit.
 */
#include "server.h"

#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/rand.h>

#include "audit.h"
#include "clock.h"
#include "config.h"
#include "connguard.h"
#include "facade_http.h"
#include "flusher.h"
#include "hashpool.h"
#include "keys.h"
#include "keywatch.h"
#include "lastused.h"
#include "log.h"
#include "loop_thread.h"
#include "mbuf.h"
#include "revoke.h"
#include "revsync.h"
#include "slab.h"
#include "store.h"
#include "store_audit.h"
#include "tls.h"
#include "worker.h"
#include "xalloc.h"

#define SHUTDOWN_FLUSH_WAIT_S 2
#define TRIM_INTERVAL_S 5
#define AUDIT_INTERVAL_S 1 /* the audit writer's tick */
/* The public side yields the CPU to the workers (Introspect) and the revocation view when
 * they contend: a flood of requests on the facade must not slow the hot path. Not lower:
 * at nice 19 the facade's own answers (/healthz) waited 200 ms behind ordinary processes
 * on a busy machine. Password hashing yields to everything (hashpool.c, nice 19). */
#define FACADE_NICE 10
#define FWD_DEFAULT_MAX_CONNS 1024 /* forward-auth connections when not configured: at most */

struct server {
    const struct p2a_config *cfg;
    struct service_shared shared;
    struct worker *workers;
    int nworkers;
    struct event_base *base;
    struct store *store;
    atomic_bool stopping;
    /* the revocation view's thread */
    struct loop_thread rev_lt;
    struct store *rev_store;
    struct revsync *revsync;
    /* the facade's thread */
    struct loop_thread fac_lt;
    struct store *fac_store;
    struct facade *facade;
    struct hashpool *hashpool;
    struct connguard *rpc_guard;
    struct connguard *fwd_guard; /* the forward-auth port's */
    /* main's side jobs */
    struct flusher *flusher;
    struct keywatch *keywatch;
    struct event *sigterm_ev, *sigint_ev, *deadline_ev, *grace_ev, *exit_ev, *trim_ev;
    atomic_int workers_exited;
    /* the audit trail's writer; NULL when PIPE2_AUTH_AUDIT is off */
    struct audit_writer *audit;
    struct event *audit_ev, *audit_deadline_ev;
    bool audit_last; /* the shutdown's writes: the loop exits when none is in flight */
};

/* ---- side jobs ------------------------------------------------------------------------------ */

/* Memory an attack made the threads take (buffers of half-sent requests, their streams) goes
 * back to malloc when the connections end; this gives malloc's free pages back to the
 * system, so that RSS falls again once an attack is over. A walk over malloc's arenas: a
 * fraction of a millisecond, every few seconds, on the thread that owns nothing hot. */
static void on_trim_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    malloc_trim(0);
}

static void on_audit_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct server *s = arg;
    audit_writer_tick(s->audit, false);
}

/* At shutdown: the last audit writes are done. */
static void on_audit_idle(void *arg)
{
    struct server *s = arg;
    if (s->audit_last)
        event_base_loopexit(s->base, NULL);
}

static void on_audit_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct server *s = arg;
    log_warn("shutdown.audit_timeout",
             "shutdown: Redis did not take the last audit events in time (they were written "
             "on stdout)");
    event_base_loopexit(s->base, NULL);
}

/* Runs on a worker's or the facade's thread once it has switched keyrings. */
static void on_thread_keys(void *arg)
{
    struct server *s = arg;
    keywatch_ack(s->keywatch);
}

/* ---- readiness and metrics (for the facade) ------------------------------------------------ */

static bool is_ready(void *arg, const char **why)
{
    struct server *s = arg;
    int64_t age;
    enum revoke_state st = revoke_usable(s->shared.revoked, clock_mono_ms(), &age);
    if (atomic_load(&s->stopping))
        *why = "shutting down";
    else if (st == REVOKE_NOT_LOADED)
        *why = "revocation list not loaded yet";
    else if (st == REVOKE_STALE)
        *why = "revocation list is stale (Redis unreachable?)";
    else if (!store_connected(s->store))
        *why = "Redis unreachable";
    else
        return true;
    return false;
}

/* On the facade's thread: the ring it follows. */
static const struct keyring *current_keys(void *arg)
{
    const struct server *s = arg;
    return s->fac_lt.keys;
}

static void render_metrics(void *arg, struct mbuf *out)
{
    struct server *s = arg;
    workers_metrics(s->workers, s->nworkers, out);
    revsync_metrics(s->revsync, out);
    mbuf_printf(out,
                "# HELP p2a_redis_connected Whether each Redis connection is up.\n"
                "# TYPE p2a_redis_connected gauge\n"
                "p2a_redis_connected{connection=\"main\"} %d\n"
                "p2a_redis_connected{connection=\"subscriber\"} %d\n",
                store_connected(s->store), revsync_subscriber_connected(s->revsync));
    for (int i = 0; i < s->nworkers; i++)
        mbuf_printf(out, "p2a_redis_connected{connection=\"worker%d\"} %d\n", i,
                    store_connected(s->workers[i].svc.store));
    flusher_metrics(s->flusher, out);
    if (s->audit != NULL)
        audit_writer_metrics(s->audit, out);
    const char *why;
    mbuf_printf(out,
                "# HELP p2a_ready Whether this replica takes traffic.\n"
                "# TYPE p2a_ready gauge\n"
                "p2a_ready %d\n",
                is_ready(s, &why));
    facade_metrics(s->facade, out);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct server *s = arg;
    log_warn("shutdown.grace_over",
             "shutdown: grace period over; closing the connections still open");
    for (int i = 0; i < s->nworkers; i++)
        loop_thread_stop(&s->workers[i].lt);
}

/* Runs on a worker's thread as it ends. */
static void on_worker_exit(void *arg)
{
    struct server *s = arg;
    atomic_fetch_add(&s->workers_exited, 1);
    event_active(s->exit_ev, EV_TIMEOUT, 0);
}

static void on_exit_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct server *s = arg;
    if (atomic_load(&s->workers_exited) == s->nworkers)
        event_base_loopbreak(s->base);
}

/* SIGTERM: not ready at once, stop taking connections, GOAWAY, let calls in flight finish,
 * then (once every worker is done, or at the grace period) flush and exit. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct server *s = arg;
    if (atomic_load(&s->stopping)) {
        log_warn("shutdown.forced", "second signal: exiting now");
        exit(1);
    }
    log_info("shutdown.draining", "signal %d: draining (grace %d s)", (int)sig,
             s->cfg->shutdown_grace_s);
    atomic_store(&s->stopping, true);
    atomic_store(&s->shared.draining, true);
    keywatch_stop(s->keywatch);
    for (int i = 0; i < s->nworkers; i++)
        worker_drain(&s->workers[i]);
    struct timeval grace = {s->cfg->shutdown_grace_s, 0};
    evtimer_add(s->grace_ev, &grace);
}

static void on_shutdown_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct server *s = arg;
    log_warn("shutdown.flush_timeout", "shutdown: Redis did not take the last-used marks in time");
    event_base_loopexit(s->base, NULL);
}

/* libevent's own lines, at most one a second per severity with the count passed over: some
 * come once per connection (libevent 2.1 warns "BEV_OPT_CLOSE_ON_FREE set on an bufferevent
 * with too few references" for every facade connection that a "Connection: close" request
 * ends), so any anonymous client could write a line per request. Any thread. */
static struct log_limit libevent_limits[4];

static void on_libevent_log(int severity, const char *msg)
{
    enum log_level level = severity == EVENT_LOG_DEBUG  ? LOG_DEBUG
                           : severity == EVENT_LOG_MSG  ? LOG_INFO
                           : severity == EVENT_LOG_WARN ? LOG_WARN
                                                        : LOG_ERROR;
    unsigned long long passed = 0;
    if (!log_enabled(level) || !log_every_second(&libevent_limits[level - LOG_DEBUG], &passed))
        return;
    log_msg(level, "libevent", "%s (%llu passed over)", msg, passed);
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The connection bounds of the RPC and forward-auth ports; the facade's are http_gate.c's.
 * Left at 0, they share the descriptor limit: 3/8 for the RPC port, 1/4 for the facade,
 * 1/8 for forward-auth (at most FWD_DEFAULT_MAX_CONNS: about 60 KiB each), and a quarter
 * stays for everything else: Redis connections, fetches, listeners and their reserve
 * descriptors, key files. No port's clients can then take the descriptors another port,
 * Redis or a key reload needs. Per address: a quarter of the RPC port's total, half of
 * forward-auth's (a gateway is one address with a pool of connections), so that no one
 * address takes a whole port, and health checks and other gateways still get in. */
static void connection_bounds(const struct p2a_config *cfg, size_t *rpc_max, size_t *rpc_per_addr,
                              size_t *fwd_max, size_t *fwd_per_addr)
{
    size_t eighth = connguard_default_max(8);
    *rpc_max = cfg->rpc_max_conns > 0 ? (size_t)cfg->rpc_max_conns : 3 * eighth;
    *rpc_per_addr =
        cfg->rpc_max_conns_per_addr > 0 ? (size_t)cfg->rpc_max_conns_per_addr : (*rpc_max + 3) / 4;
    *fwd_max = cfg->fwd_max_conns > 0           ? (size_t)cfg->fwd_max_conns
               : eighth < FWD_DEFAULT_MAX_CONNS ? eighth
                                                : FWD_DEFAULT_MAX_CONNS;
    *fwd_per_addr =
        cfg->fwd_max_conns_per_addr > 0 ? (size_t)cfg->fwd_max_conns_per_addr : (*fwd_max + 1) / 2;
    log_info("startup.bounds",
             "connections: RPC %zu (%zu per address), forward-auth %zu (%zu per address)", *rpc_max,
             *rpc_per_addr, *fwd_max, *fwd_per_addr);
}

/* The revocation view's thread: its own loop, Redis connections and nothing else. */
static p2a_err start_revocation_view(struct server *s)
{
    if (loop_thread_init(&s->rev_lt, "revocations", NULL) != P2A_OK)
        return P2A_ERR_INTERNAL;
    s->rev_store = store_new(s->rev_lt.base, s->cfg, "revocations");
    s->revsync = revsync_new(s->rev_lt.base, s->cfg, s->rev_store, s->shared.revoked);
    return loop_thread_start(&s->rev_lt);
}

static void stop_revocation_view(struct server *s)
{
    loop_thread_stop(&s->rev_lt);
    loop_thread_join(&s->rev_lt);
    store_free(s->rev_store); /* fails what is pending, while revsync can still take it */
    revsync_free(s->revsync);
    loop_thread_deinit(&s->rev_lt);
}

/* The facade's thread: the HTTP/1.1 listeners, its Redis connection, the hash pool. */
static p2a_err start_facade(struct server *s, char *err, size_t errlen)
{
    const struct p2a_config *cfg = s->cfg;
    if (loop_thread_init(&s->fac_lt, "facade", s->shared.keys) != P2A_OK ||
        hashpool_new(cfg->hash_threads, cfg->hash_queue, &s->hashpool) != P2A_OK) {
        snprintf(err, errlen, "cannot start the facade's threads");
        return P2A_ERR_INTERNAL;
    }
    s->fac_lt.ack = on_thread_keys;
    s->fac_lt.owner = s;
    keywatch_follow(s->keywatch, &s->fac_lt);
    s->fac_lt.nice = FACADE_NICE;
    s->fac_store = store_new(s->fac_lt.base, cfg, "facade");
    struct facade_hooks hooks = {.ready = is_ready,
                                 .metrics = render_metrics,
                                 .keys = current_keys,
                                 .arg = s,
                                 .store = s->fac_store,
                                 .revoked = s->shared.revoked,
                                 .svckeys = s->shared.svckeys,
                                 .hashpool = s->hashpool};
    p2a_err rc = facade_new(s->fac_lt.base, cfg, &hooks, &s->facade, err, errlen);
    if (rc == P2A_OK)
        rc = loop_thread_start(&s->fac_lt);
    return rc;
}

static void stop_facade(struct server *s)
{
    loop_thread_stop(&s->fac_lt);
    loop_thread_join(&s->fac_lt);
    facade_free(s->facade);   /* orphans its requests waiting on Redis or the pool */
    store_free(s->fac_store); /* whose callbacks now free them */
    hashpool_free(s->hashpool);
    loop_thread_deinit(&s->fac_lt);
}

/* Process-wide settings, before any thread or event loop exists. */
static void process_init(void)
{
    /* before any other libevent call: its buffers too come from the threads' slabs */
    event_set_mem_functions(slab_alloc, slab_realloc, slab_free);
    event_set_log_callback(on_libevent_log);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    P2A_ASSERT(evthread_use_pthreads() == 0);
}

/* What every thread shares, and the main loop with its side jobs (not yet started). */
static void server_init(struct server *s, const struct p2a_config *cfg, struct keyring *keys,
                        const struct svckeys *svckeys)
{
    s->cfg = cfg;
    s->shared.cfg = cfg;
    s->shared.keys = keys;
    s->shared.svckeys = svckeys;
    s->shared.revoked = revoke_new((int64_t)cfg->revocation_staleness_s * 1000);
    s->shared.marks_inbox = lastused_inbox_new();
    s->base = event_base_new();
    P2A_ASSERT(s->base != NULL);
    s->store = store_new(s->base, cfg, "main");
    if (cfg->audit) { /* before any thread that emits starts */
        unsigned char r[3];
        char tag[8];
        P2A_ASSERT(RAND_bytes(r, sizeof(r)) == 1);
        snprintf(tag, sizeof(tag), "%02x%02x%02x", r[0], r[1], r[2]);
        audit_start(tag);
        s->audit = audit_writer_new(s->store, cfg);
        audit_writer_on_idle(s->audit, on_audit_idle, s);
    }
    size_t rpc_max, rpc_per_addr, fwd_max, fwd_per_addr;
    connection_bounds(cfg, &rpc_max, &rpc_per_addr, &fwd_max, &fwd_per_addr);
    s->rpc_guard = connguard_new("rpc", rpc_max, rpc_per_addr, cfg->proxies, cfg->nproxies);
    s->fwd_guard = connguard_new("forward-auth", fwd_max, fwd_per_addr, NULL, 0);
    s->workers = xcalloc((size_t)cfg->workers, sizeof(struct worker));
    s->keywatch = keywatch_new(s->base, cfg->keys_dir, keys);
    s->exit_ev = event_new(s->base, -1, 0, on_exit_event, s);
    s->grace_ev = evtimer_new(s->base, on_grace, s);
    P2A_ASSERT(s->exit_ev != NULL && s->grace_ev != NULL);
}

/* Binds every port and starts every thread: the workers' listeners are bound before the
 * revocation view starts loading, so that SERVING (which waits for the load) means that
 * every port answers. */
static p2a_err server_start(struct server *s, SSL_CTX *ssl_ctx)
{
    const struct p2a_config *cfg = s->cfg;
    char err[512];
    p2a_err rc = P2A_OK;
    for (int i = 0; i < cfg->workers && rc == P2A_OK; i++) {
        struct worker *w = &s->workers[i];
        rc = worker_init(w, i, &s->shared, ssl_ctx, s->rpc_guard, s->fwd_guard, err, sizeof(err));
        w->lt.on_exit = on_worker_exit;
        w->lt.ack = on_thread_keys;
        w->lt.owner = s;
        keywatch_follow(s->keywatch, &w->lt);
        s->nworkers = i + 1;
        if (rc != P2A_OK)
            log_error("startup.failed", "%s", err);
    }
    if (rc == P2A_OK && (rc = start_facade(s, err, sizeof(err))) != P2A_OK)
        log_error("startup.failed", "%s", err);
    if (rc == P2A_OK && (rc = start_revocation_view(s)) != P2A_OK)
        log_error("startup.failed", "cannot start the revocation view's thread");
    for (int i = 0; i < s->nworkers && rc == P2A_OK; i++)
        if ((rc = worker_start(&s->workers[i])) != P2A_OK)
            log_error("startup.failed", "cannot start worker thread %d", i);
    if (rc != P2A_OK)
        return rc;
    s->flusher = flusher_new(s->base, s->store, s->shared.marks_inbox, cfg->last_used_flush_s);
    keywatch_start(s->keywatch, cfg->keys_reload_s);
    s->trim_ev = loop_timer(s->base, TRIM_INTERVAL_S, true, on_trim_timer, s);
    if (s->audit != NULL)
        s->audit_ev = loop_timer(s->base, AUDIT_INTERVAL_S, true, on_audit_timer, s);
    s->sigterm_ev = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sigint_ev = evsignal_new(s->base, SIGINT, on_signal, s);
    event_add(s->sigterm_ev, NULL);
    event_add(s->sigint_ev, NULL);
    log_info("startup.listening",
             "pipe2-authd listening on %s (%s), %d workers, issuer %s; HTTP on %s, "
             "metrics on %s, forward-auth on %s",
             cfg->rpc_listen, ssl_ctx ? "TLS, ALPN h2" : "h2c", s->nworkers, cfg->issuer,
             cfg->http_listen, cfg->metrics_listen,
             cfg->fwd_host != NULL ? cfg->forward_auth_listen : "(none)");
    return P2A_OK;
}

/* Undoes server_start() in reverse: the workers first, then the facade, the view; after a
 * clean run, one last flush of the marks. */
static void server_stop(struct server *s, bool flush)
{
    for (int i = 0; i < s->nworkers; i++)
        loop_thread_stop(&s->workers[i].lt);
    for (int i = 0; i < s->nworkers; i++)
        loop_thread_join(&s->workers[i].lt);
    if (s->fac_lt.base != NULL)
        stop_facade(s);
    if (s->rev_lt.base != NULL)
        stop_revocation_view(s);
    if (!flush)
        return;
    /* the workers' exit may have left the main loop's exit event active: in the dispatches
     * below it would break the loop before their writes are answered */
    event_del(s->exit_ev);
    atomic_store(&s->stopping, true);
    if (s->audit != NULL) { /* every thread that emits is gone: the last events, then the marks */
        /* the final tick is the last: a periodic one during a later dispatch would leave a
         * round in flight (its failures due on a loop turn that never comes) */
        if (s->audit_ev != NULL)
            event_del(s->audit_ev);
        s->audit_last = true;
        audit_writer_tick(s->audit, true);
        if (audit_writer_in_flight(s->audit) > 0) {
            s->audit_deadline_ev =
                loop_timer(s->base, SHUTDOWN_FLUSH_WAIT_S, false, on_audit_deadline, s);
            event_base_dispatch(s->base);
        }
    }
    for (int i = 0; i < s->nworkers; i++) /* their threads are gone: safe to touch */
        flusher_add(s->flusher, s->workers[i].svc.marks);
    if (flusher_last(s->flusher)) {
        s->deadline_ev = loop_timer(s->base, SHUTDOWN_FLUSH_WAIT_S, false, on_shutdown_deadline, s);
        event_base_dispatch(s->base);
    }
}

/* Undoes server_init(). */
static void server_free(struct server *s)
{
    for (int i = 0; i < s->nworkers; i++)
        worker_deinit(&s->workers[i]);
    free(s->workers);
    store_free(s->store); /* fails what is pending, while the flusher can still take it */
    flusher_free(s->flusher);
    audit_writer_free(s->audit); /* the store failed its writes in flight: none is left */
    audit_stop();
    struct event *evs[] = {s->sigterm_ev, s->sigint_ev, s->deadline_ev, s->grace_ev,
                           s->exit_ev,    s->trim_ev,   s->audit_ev,    s->audit_deadline_ev};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i] != NULL)
            event_free(evs[i]);
    keywatch_free(s->keywatch); /* every thread that followed its rings is joined */
    event_base_free(s->base);
    connguard_free(s->rpc_guard);
    connguard_free(s->fwd_guard);
    lastused_inbox_free(s->shared.marks_inbox);
    revoke_free(s->shared.revoked);
}

p2a_err server_run(const struct p2a_config *cfg, struct keyring *keys,
                   const struct svckeys *svckeys)
{
    process_init();
    char err[512];
    SSL_CTX *ssl_ctx = NULL;
    if (cfg->tls_cert != NULL &&
        tls_ctx_new(cfg->tls_cert, cfg->tls_key, &ssl_ctx, err, sizeof(err)) != P2A_OK) {
        log_error("startup.failed", "%s", err);
        keys_free(keys);
        return P2A_ERR_INVALID;
    }
    struct server s = {0};
    server_init(&s, cfg, keys, svckeys);
    p2a_err rc = server_start(&s, ssl_ctx);
    if (rc == P2A_OK)
        event_base_dispatch(s.base);
    server_stop(&s, rc == P2A_OK);
    server_free(&s);
    tls_ctx_free(ssl_ctx);
    slab_thread_cleanup();
    log_info("shutdown.done", "stopped");
    return rc;
}
