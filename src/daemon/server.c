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
 *   - main (this file): signals, start-up, shutdown, the last-used flush (every
 *     PIPE2_AUTH_LAST_USED_FLUSH_INTERVAL it takes the marks the workers handed to the inbox
 *     and writes them in one Redis round trip per 1000 tokens; a failed write puts its marks
 *     back for the next round), key rotation (keys_dir is re-read; every thread that signs
 *     or verifies switches between two events and acknowledges; the old ring is freed once
 *     all have).
 * /metrics is rendered on the facade's thread from the workers' counters (each the only
 * writer of its own, read relaxed) and main's (atomics); readiness likewise.
 * Shutdown (SIGTERM/SIGINT): not ready at once, workers drain; then the facade, the hash
 * pool and the revocation view stop, the marks are flushed one last time, exit.
 */
#include "server.h"

#include <dirent.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "clock.h"
#include "config.h"
#include "connguard.h"
#include "digest.h"
#include "facade_http.h"
#include "hashpool.h"
#include "keys.h"
#include "lastused.h"
#include "metrics.h"
#include "log.h"
#include "loop_thread.h"
#include "revoke.h"
#include "revsync.h"
#include "slab.h"
#include "store.h"
#include "tls.h"
#include "token.h"
#include "worker.h"
#include "xalloc.h"

#define FLUSH_CHUNK 1000
#define SHUTDOWN_FLUSH_WAIT_S 2
#define TRIM_INTERVAL_S 5
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
    struct lastused *pending; /* marks drained from workers, not yet written */
    size_t flushes_in_flight;
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
    /* written by main, read by the facade's thread for /metrics */
    atomic_uint_least64_t flushes_ok, flushes_failed, marks_written;
    struct event *flush_ev, *sigterm_ev, *sigint_ev, *deadline_ev, *grace_ev, *exit_ev;
    atomic_int workers_exited;
    /* signing keys: the current ring, and the previous one until every worker has let go */
    struct keyring *keys, *keys_old;
    atomic_int keys_acks;
    unsigned char keys_fp[DIGEST_SHA256_LEN];
    struct event *keys_watch_ev, *keys_ack_ev, *trim_ev;
};

/* ---- last used -------------------------------------------------------------------------- */

struct flush_batch {
    struct server *s;
    size_t n;
    char (*jti)[JTI_MAX_LEN + 1];
    int64_t *ts;
    const char **ptrs;
};

static void on_flushed(void *arg, p2a_err err)
{
    struct flush_batch *b = arg;
    struct server *s = b->s;
    if (err != P2A_OK) {
        atomic_fetch_add_explicit(&s->flushes_failed, 1, memory_order_relaxed);
        log_warn("last_used.flush_failed",
                 "last-used flush of %zu tokens failed; retrying next interval", b->n);
        for (size_t i = 0; i < b->n; i++)
            lastused_mark(s->pending, b->jti[i], b->ts[i]);
    } else {
        atomic_fetch_add_explicit(&s->flushes_ok, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->marks_written, b->n, memory_order_relaxed);
        log_debug("last_used.flushed", "last-used flush: %zu tokens", b->n);
    }
    s->flushes_in_flight--;
    free(b->jti);
    free(b->ts);
    free(b->ptrs);
    free(b);
    if (atomic_load(&s->stopping) && s->flushes_in_flight == 0)
        event_base_loopexit(s->base, NULL);
}

static void batch_send(struct flush_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        b->ptrs[i] = b->jti[i];
    b->s->flushes_in_flight++;
    store_last_used(b->s->store, b->ptrs, b->ts, b->n, on_flushed, b);
}

static struct flush_batch *batch_new(struct server *s)
{
    struct flush_batch *b = xcalloc(1, sizeof(*b));
    b->s = s;
    b->jti = xcalloc(FLUSH_CHUNK, sizeof(*b->jti));
    b->ts = xcalloc(FLUSH_CHUNK, sizeof(*b->ts));
    b->ptrs = xcalloc(FLUSH_CHUNK, sizeof(*b->ptrs));
    return b;
}

static void add_mark(void *arg, const char *jti, int64_t ts)
{
    struct flush_batch **bp = arg;
    struct flush_batch *b = *bp;
    if (b->n == FLUSH_CHUNK) {
        struct server *s = b->s;
        batch_send(b);
        *bp = b = batch_new(s);
    }
    snprintf(b->jti[b->n], sizeof(b->jti[b->n]), "%s", jti);
    b->ts[b->n++] = ts;
}

static void flush_marks(struct server *s)
{
    lastused_inbox_take(s->shared.marks_inbox, s->pending);
    if (lastused_count(s->pending) == 0)
        return;
    struct lastused *taken = lastused_new();
    lastused_merge(taken, s->pending);
    struct flush_batch *b = batch_new(s);
    lastused_each(taken, add_mark, &b);
    lastused_free(taken);
    if (b->n > 0) {
        batch_send(b);
    } else {
        free(b->jti);
        free(b->ts);
        free(b->ptrs);
        free(b);
    }
}

static void on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    flush_marks(arg);
}

/* Memory an attack made the threads take (buffers of half-sent requests, their streams) goes
 * back to malloc when the connections end; this gives malloc's free pages back to the
 * system, so that RSS falls again once an attack is over. A walk over malloc's arenas: a
 * fraction of a millisecond, every few seconds, on the thread that owns nothing hot. */
static void on_trim_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    malloc_trim(0);
}

/* ---- signing-key rotation ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A digest of the names, sizes and modification times of the *.pem files in dir (following
 * symlinks, as a Kubernetes Secret volume has them): it changes when a key is added,
 * replaced or removed. */
static void keys_fingerprint(const char *dir, unsigned char out[DIGEST_SHA256_LEN])
{
    char *names[KEYS_MAX * 4];
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL && n < sizeof(names) / sizeof(names[0])) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".pem") == 0)
            names[n++] = xstrdup(de->d_name);
    }
    if (d != NULL)
        closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_str);
    struct mbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0)
            mbuf_printf(&b, "%s %lld %lld.%09ld\n", names[i], (long long)st.st_size,
                        (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        free(names[i]);
    }
    digest_sha256(b.s ? b.s : "", b.len, out);
    mbuf_free(&b);
}

static void on_keys_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct server *s = arg;
    if (s->keys_old != NULL || atomic_load(&s->stopping))
        return; /* a rotation is still in progress */
    unsigned char fp[DIGEST_SHA256_LEN];
    keys_fingerprint(s->cfg->keys_dir, fp);
    if (memcmp(fp, s->keys_fp, sizeof(fp)) == 0)
        return;
    memcpy(s->keys_fp, fp, sizeof(fp)); /* a broken change is reported once, not every tick */
    char err[512];
    struct keyring *ring;
    if (keys_load(s->cfg->keys_dir, &ring, err, sizeof(err)) != P2A_OK) {
        log_error("keys.reload_failed",
                  "signing keys changed but cannot be used (%s); "
                  "keeping the %zu keys loaded before",
                  err, keys_count(s->keys));
        return;
    }
    s->keys_old = s->keys;
    s->keys = ring;
    atomic_store(&s->keys_acks, 0);
    for (int i = 0; i < s->nworkers; i++)
        loop_thread_set_keys(&s->workers[i].lt, ring);
    loop_thread_set_keys(&s->fac_lt, ring);
    log_info("keys.reloaded", "%zu signing keys, signing with kid %s", keys_count(ring),
             keys_signer(ring)->kid);
}

/* Runs on a worker's or the facade's thread once it has switched keyrings. */
static void on_thread_keys(void *arg)
{
    struct server *s = arg;
    atomic_fetch_add(&s->keys_acks, 1);
    event_active(s->keys_ack_ev, EV_TIMEOUT, 0);
}

static void on_keys_ack(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct server *s = arg;
    if (s->keys_old != NULL && atomic_load(&s->keys_acks) == s->nworkers + 1) {
        keys_free(s->keys_old); /* no worker can be using it any more */
        s->keys_old = NULL;
    }
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
    struct metrics *mx[256];
    size_t n = 0;
    for (int i = 0; i < s->nworkers && n < 256; i++)
        mx[n++] = s->workers[i].svc.mx;
    metrics_render(out, mx, n, service_method_name);

    struct revoke_stats st;
    revoke_get_stats(s->shared.revoked, clock_mono_ms(), &st);
    static const char *const paths[REVOKE_PATH_COUNT] = {"local", "message", "poll", "startup"};
    mbuf_printf(out,
                "# HELP p2a_revocation_view_age_seconds Time since the last successful sync of "
                "the revocation list with Redis (-1 before the first).\n"
                "# TYPE p2a_revocation_view_age_seconds gauge\n"
                "p2a_revocation_view_age_seconds %.3f\n"
                "# HELP p2a_revocation_propagation_lag_seconds From a revocation to its "
                "application here, for the last one that came by message (-1: none yet).\n"
                "# TYPE p2a_revocation_propagation_lag_seconds gauge\n"
                "p2a_revocation_propagation_lag_seconds %.3f\n"
                "# HELP p2a_revocations Revoked tokens held in memory (until they expire).\n"
                "# TYPE p2a_revocations gauge\n"
                "p2a_revocations %zu\n"
                "# HELP p2a_revocation_set_bytes Memory held by the revocation set.\n"
                "# TYPE p2a_revocation_set_bytes gauge\n"
                "p2a_revocation_set_bytes %zu\n"
                "# HELP p2a_revocations_applied_total Revocations new to this process, by the "
                "path that brought them.\n"
                "# TYPE p2a_revocations_applied_total counter\n",
                st.view_age_ms < 0 ? -1.0 : (double)st.view_age_ms / 1000,
                st.last_lag_ms < 0 ? -1.0 : (double)st.last_lag_ms / 1000, st.entries, st.bytes);
    for (int p = 0; p < REVOKE_PATH_COUNT; p++)
        mbuf_printf(out, "p2a_revocations_applied_total{path=\"%s\"} %llu\n", paths[p],
                    (unsigned long long)st.applied[p]);
    mbuf_printf(out,
                "# HELP p2a_redis_connected Whether each Redis connection is up.\n"
                "# TYPE p2a_redis_connected gauge\n"
                "p2a_redis_connected{connection=\"main\"} %d\n"
                "p2a_redis_connected{connection=\"subscriber\"} %d\n",
                store_connected(s->store), revsync_subscriber_connected(s->revsync));
    for (int i = 0; i < s->nworkers; i++)
        mbuf_printf(out, "p2a_redis_connected{connection=\"worker%d\"} %d\n", i,
                    store_connected(s->workers[i].svc.store));
    const char *why;
    mbuf_printf(out,
                "# HELP p2a_last_used_flushes_total Batched writes of last-used times, by "
                "result.\n"
                "# TYPE p2a_last_used_flushes_total counter\n"
                "p2a_last_used_flushes_total{result=\"ok\"} %llu\n"
                "p2a_last_used_flushes_total{result=\"error\"} %llu\n"
                "# HELP p2a_last_used_marks_written_total Tokens whose last-used time was "
                "written.\n"
                "# TYPE p2a_last_used_marks_written_total counter\n"
                "p2a_last_used_marks_written_total %llu\n"
                "# HELP p2a_ready Whether this replica takes traffic.\n"
                "# TYPE p2a_ready gauge\n"
                "p2a_ready %d\n",
                (unsigned long long)atomic_load_explicit(&s->flushes_ok, memory_order_relaxed),
                (unsigned long long)atomic_load_explicit(&s->flushes_failed, memory_order_relaxed),
                (unsigned long long)atomic_load_explicit(&s->marks_written, memory_order_relaxed),
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
    if (loop_thread_init(&s->fac_lt, "facade", s->keys) != P2A_OK ||
        hashpool_new(cfg->hash_threads, cfg->hash_queue, &s->hashpool) != P2A_OK) {
        snprintf(err, errlen, "cannot start the facade's threads");
        return P2A_ERR_INTERNAL;
    }
    s->fac_lt.ack = on_thread_keys;
    s->fac_lt.owner = s;
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

/* Long on purpose: start-up, the main loop and shutdown read top to bottom, each shutdown
 * step undoing one start-up step in reverse order; split, the pairs would drift apart. */
p2a_err server_run(const struct p2a_config *cfg, struct keyring *keys,
                   const struct svckeys *svckeys)
{
    char err[512];
    p2a_err rc = P2A_OK;
    /* before any other libevent call: its buffers too come from the threads' slabs */
    event_set_mem_functions(slab_alloc, slab_realloc, slab_free);
    event_set_log_callback(on_libevent_log);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    P2A_ASSERT(evthread_use_pthreads() == 0);

    SSL_CTX *ssl_ctx = NULL;
    if (cfg->tls_cert != NULL &&
        tls_ctx_new(cfg->tls_cert, cfg->tls_key, &ssl_ctx, err, sizeof(err)) != P2A_OK) {
        log_error("startup.failed", "%s", err);
        return P2A_ERR_INVALID;
    }

    struct server s = {0};
    s.cfg = cfg;
    s.shared.cfg = cfg;
    s.shared.keys = keys;
    s.shared.svckeys = svckeys;
    s.shared.revoked = revoke_new((int64_t)cfg->revocation_staleness_s * 1000);
    s.pending = lastused_new();
    s.shared.marks_inbox = lastused_inbox_new();
    s.base = event_base_new();
    P2A_ASSERT(s.base != NULL);
    s.store = store_new(s.base, cfg, "main");
    size_t rpc_max, rpc_per_addr, fwd_max, fwd_per_addr;
    connection_bounds(cfg, &rpc_max, &rpc_per_addr, &fwd_max, &fwd_per_addr);
    s.rpc_guard = connguard_new("rpc", rpc_max, rpc_per_addr, cfg->proxies, cfg->nproxies);
    s.fwd_guard = connguard_new("forward-auth", fwd_max, fwd_per_addr, NULL, 0);

    s.workers = xcalloc((size_t)cfg->workers, sizeof(struct worker));
    s.keys = keys;
    keys_fingerprint(cfg->keys_dir, s.keys_fp);
    s.keys_ack_ev = event_new(s.base, -1, 0, on_keys_ack, &s);
    s.exit_ev = event_new(s.base, -1, 0, on_exit_event, &s);
    s.grace_ev = evtimer_new(s.base, on_grace, &s);
    P2A_ASSERT(s.exit_ev != NULL && s.grace_ev != NULL);
    for (int i = 0; i < cfg->workers && rc == P2A_OK; i++) {
        rc = worker_init(&s.workers[i], i, &s.shared, ssl_ctx, s.rpc_guard, s.fwd_guard, err,
                         sizeof(err));
        s.workers[i].lt.on_exit = on_worker_exit;
        s.workers[i].lt.ack = on_thread_keys;
        s.workers[i].lt.owner = &s;
        s.nworkers = i + 1;
        if (rc != P2A_OK)
            log_error("startup.failed", "%s", err);
    }
    /* Every listener is bound before the revocation view starts loading: SERVING (which
     * waits for the load) then means that every port answers. */
    if (rc == P2A_OK) {
        rc = start_facade(&s, err, sizeof(err));
        if (rc != P2A_OK)
            log_error("startup.failed", "%s", err);
    }
    if (rc == P2A_OK && start_revocation_view(&s) != P2A_OK) {
        log_error("startup.failed", "cannot start the revocation view's thread");
        rc = P2A_ERR_INTERNAL;
    }
    for (int i = 0; i < s.nworkers && rc == P2A_OK; i++) {
        rc = worker_start(&s.workers[i]);
        if (rc != P2A_OK)
            log_error("startup.failed", "cannot start worker thread %d", i);
    }
    if (rc == P2A_OK) {
        s.flush_ev = loop_timer(s.base, cfg->last_used_flush_s, true, on_flush_timer, &s);
        s.keys_watch_ev = loop_timer(s.base, cfg->keys_reload_s, true, on_keys_watch, &s);
        s.trim_ev = loop_timer(s.base, TRIM_INTERVAL_S, true, on_trim_timer, &s);
        s.sigterm_ev = evsignal_new(s.base, SIGTERM, on_signal, &s);
        s.sigint_ev = evsignal_new(s.base, SIGINT, on_signal, &s);
        event_add(s.sigterm_ev, NULL);
        event_add(s.sigint_ev, NULL);
        log_info("startup.listening",
                 "pipe2-authd listening on %s (%s), %d workers, issuer %s; HTTP on %s, "
                 "metrics on %s, forward-auth on %s",
                 cfg->rpc_listen, ssl_ctx ? "TLS, ALPN h2" : "h2c", s.nworkers, cfg->issuer,
                 cfg->http_listen, cfg->metrics_listen,
                 cfg->fwd_host != NULL ? cfg->forward_auth_listen : "(none)");
        event_base_dispatch(s.base);
    }

    /* shutdown: workers first, then the facade, the view, one last flush of the marks */
    for (int i = 0; i < s.nworkers; i++)
        loop_thread_stop(&s.workers[i].lt);
    for (int i = 0; i < s.nworkers; i++)
        loop_thread_join(&s.workers[i].lt);
    if (s.fac_lt.base != NULL)
        stop_facade(&s);
    if (s.rev_lt.base != NULL)
        stop_revocation_view(&s);
    if (rc == P2A_OK) {
        atomic_store(&s.stopping, true);
        for (int i = 0; i < s.nworkers; i++) /* their threads are gone: safe to touch */
            lastused_merge(s.pending, s.workers[i].svc.marks);
        flush_marks(&s);
        if (s.flushes_in_flight > 0) {
            s.deadline_ev =
                loop_timer(s.base, SHUTDOWN_FLUSH_WAIT_S, false, on_shutdown_deadline, &s);
            event_base_dispatch(s.base);
        }
    }
    for (int i = 0; i < s.nworkers; i++)
        worker_deinit(&s.workers[i]);
    free(s.workers);
    store_free(s.store);
    struct event *evs[] = {s.flush_ev, s.sigterm_ev,    s.sigint_ev,   s.deadline_ev, s.grace_ev,
                           s.exit_ev,  s.keys_watch_ev, s.keys_ack_ev, s.trim_ev};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i] != NULL)
            event_free(evs[i]);
    event_base_free(s.base);
    connguard_free(s.rpc_guard);
    connguard_free(s.fwd_guard);
    lastused_free(s.pending);
    lastused_inbox_free(s.shared.marks_inbox);
    revoke_free(s.shared.revoked);
    keys_free(s.keys_old);
    keys_free(s.keys);
    tls_ctx_free(ssl_ctx);
    slab_thread_cleanup();
    log_info("shutdown.done", "stopped");
    return rc;
}
