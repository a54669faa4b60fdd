/* store_redis.c -- store.h over hiredis's async API on libevent.
 *
 * DESIGN
 * ------
 * States follow h2o's redis client: CLOSED (ac == NULL, a reconnect timer armed),
 * CONNECTING and CONNECTED (ac != NULL; hiredis queues commands until the socket is up).
 * AUTH and SELECT are queued first on every new connection.
 *
 * hiredis 0.14 has no command timeout, so a watchdog timer does it: replies come back in
 * order, so if commands are pending and nothing has arrived for redis_timeout_ms the
 * connection is presumed dead (a stopped or partitioned Redis): we detach it and free it,
 * which fails every pending command, and reconnect with backoff. A command issued while
 * CLOSED fails on the next loop turn, never inside the call.
 *
 * Each command carries a heap 'op' naming the parser for its reply and the caller's
 * callback; hiredis hands it back with the reply (or NULL on failure). The connection's
 * hiredis calls are in this file and store_sentinel.c (Sentinel mode: finding the primary,
 * following a failover; a READONLY answer here, our primary demoted, sends us back there);
 * store_pat.c and store_audit.c read the replies of their own commands (redisReply,
 * store_internal.h). Scripts above that (store_clients.c, store_oauth.c, store_users.c,
 * store_grants.c) see strings (store_eval).
 *
 * Threading: a store belongs to the loop it was made on.
 */
#include "store.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "store_internal.h"
#include "store_keys.h"
#include "xalloc.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define WATCHDOG_MS 100

/* ---- connection lifecycle ---------------------------------------------------------------- */

void store_schedule_reconnect(struct store *st)
{
    if (st->freeing)
        return;
    struct timeval tv = {st->backoff_ms / 1000, (st->backoff_ms % 1000) * 1000};
    evtimer_add(st->reconnect_ev, &tv);
    st->backoff_ms = st->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : st->backoff_ms * 2;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct store *st = ac->data;
    if (st == NULL || st->ac != ac)
        return;
    if (status != REDIS_OK) {
        if (!st->logged_down)
            log_warn("redis.connect_failed", "redis(%s): cannot connect to %s:%d: %s", st->name,
                     st->host, st->port, ac->errstr);
        st->logged_down = true;
        st->ac = NULL; /* hiredis frees it after this callback */
        st->connected = false;
        store_schedule_reconnect(st);
        return;
    }
    st->connected = true;
    st->backoff_ms = BACKOFF_MIN_MS;
    if (st->logged_down)
        log_info("redis.connected", "redis(%s): connected to %s:%d", st->name, st->host, st->port);
    st->logged_down = false;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct store *st = ac->data;
    if (st == NULL || st->ac != ac)
        return; /* we dropped it ourselves */
    (void)status;
    if (st->channel != NULL && !st->freeing)
        st->on_sub_state(st->sub_arg, false);
    if (!st->logged_down)
        log_warn("redis.connection_lost", "redis(%s): connection lost: %s", st->name,
                 ac->errstr[0] ? ac->errstr : "closed");
    st->logged_down = true;
    st->ac = NULL;
    st->connected = false;
    store_schedule_reconnect(st);
}

static void on_handshake_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct store *st = ac->data;
    redisReply *r = reply;
    if (st != NULL && st->ac == ac && st->pending > 0)
        st->pending--;
    if (st != NULL)
        st->last_progress_ms = clock_mono_ms();
    if (r != NULL && r->type == REDIS_REPLY_ERROR && st != NULL)
        log_error("redis.handshake_refused", "redis(%s): %s refused: %s", st->name,
                  (const char *)privdata, r->str);
}

/* A subscriber only reads, so it would never notice a peer that vanished without a FIN:
 * TCP store_keepalive probes after 5 s of silence, 3 times 2 s apart. */
void store_keepalive(int fd)
{
    int on = 1, idle = 5, intvl = 2, cnt = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* Every reply on a subscribed connection: the confirmation, then each message. */
static void on_subscribed_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    struct store *st = ac->data;
    redisReply *r = reply;
    if (st == NULL || st->ac != ac || st->freeing || r == NULL || r->type != REDIS_REPLY_ARRAY ||
        r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = r->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        st->on_sub_state(st->sub_arg, true);
    } else if (strcmp(kind, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING) {
        st->on_message(st->sub_arg, r->element[2]->str, r->element[2]->len);
    }
}

/* AUTH with the configured user and password: Redis and the sentinels take the same. */
void store_queue_auth(struct store *st, redisAsyncContext *ac)
{
    if (st->cfg->redis_password == NULL)
        return;
    const char *argv[3];
    int argc = 0;
    argv[argc++] = "AUTH";
    if (st->cfg->redis_user != NULL)
        argv[argc++] = st->cfg->redis_user;
    argv[argc++] = st->cfg->redis_password;
    if (redisAsyncCommandArgv(ac, on_handshake_reply, "AUTH", argc, argv, NULL) == REDIS_OK &&
        ac == st->ac)
        st->pending++;
}

void store_connect_redis(struct store *st)
{
    redisAsyncContext *ac = redisAsyncConnect(st->host, st->port);
    if (ac == NULL || ac->err) {
        if (!st->logged_down)
            log_warn("redis.connect_failed", "redis(%s): cannot connect: %s", st->name,
                     ac ? ac->errstr : "out of memory");
        st->logged_down = true;
        if (ac != NULL)
            redisAsyncFree(ac);
        store_schedule_reconnect(st);
        return;
    }
    ac->data = st;
    st->ac = ac;
    st->ready = st->cfg->nsentinels == 0;
    redisLibeventAttach(ac, st->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    store_queue_auth(st, ac);
    if (st->cfg->redis_db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", st->cfg->redis_db);
        const char *argv[2] = {"SELECT", db};
        if (redisAsyncCommandArgv(ac, on_handshake_reply, "SELECT", 2, argv, NULL) == REDIS_OK)
            st->pending++;
    }
    if (!st->ready) {
        const char *argv[1] = {"ROLE"};
        if (redisAsyncCommandArgv(ac, store_sentinel_on_role, NULL, 1, argv, NULL) == REDIS_OK)
            st->pending++;
    }
    if (st->channel != NULL) {
        store_keepalive(ac->c.fd);
        const char *argv[2] = {"SUBSCRIBE", st->channel};
        redisAsyncCommandArgv(ac, on_subscribed_reply, NULL, 2, argv, NULL);
    }
    st->last_progress_ms = clock_mono_ms();
}

static void connect_now(struct store *st)
{
    if (st->cfg->nsentinels == 0)
        store_connect_redis(st);
    else if (st->sac == NULL)
        store_sentinel_ask(st);
}

static void on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    connect_now(arg);
}

/* Drop the connection now: hiredis fails every pending command, and we reconnect later. */
static void drop_connection(struct store *st)
{
    redisAsyncContext *ac = st->ac;
    st->ac = NULL;
    st->connected = false;
    st->ready = false;
    st->pending = 0;
    if (ac != NULL)
        redisAsyncFree(ac);
}

void store_drop_helper(redisAsyncContext **slot)
{
    redisAsyncContext *ac = *slot;
    *slot = NULL;
    if (ac != NULL)
        redisAsyncFree(ac);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct store *st = arg;
    if (st->moved && !st->freeing) { /* Sentinel mode: to the primary the sentinels name now */
        st->moved = false;
        bool was_subscribed = st->channel != NULL && st->ready;
        drop_connection(st);
        if (was_subscribed)
            st->on_sub_state(st->sub_arg, false);
        st->backoff_ms = BACKOFF_MIN_MS;
        evtimer_del(st->reconnect_ev);
        connect_now(st);
        return;
    }
    if (store_sentinel_overdue(st))
        return;
    if (st->ac != NULL && st->pending > 0 &&
        clock_mono_ms() - st->last_progress_ms > st->cfg->redis_timeout_ms) {
        log_warn("redis.timeout", "redis(%s): no reply for %d ms; dropping the connection",
                 st->name, st->cfg->redis_timeout_ms);
        st->logged_down = true;
        drop_connection(st);
        store_schedule_reconnect(st);
    }
}

static struct store *store_alloc(struct event_base *base, const struct p2a_config *cfg,
                                 const char *name)
{
    struct store *st = xcalloc(1, sizeof(*st));
    st->base = base;
    st->cfg = cfg;
    st->backoff_ms = BACKOFF_MIN_MS;
    snprintf(st->name, sizeof(st->name), "%s", name);
    snprintf(st->host, sizeof(st->host), "%s", cfg->redis_host);
    st->port = cfg->redis_port;
    st->reconnect_ev = evtimer_new(base, on_reconnect_timer, st);
    st->watchdog_ev = event_new(base, -1, EV_PERSIST, on_watchdog, st);
    st->watch_ev = evtimer_new(base, store_sentinel_watch, st);
    P2A_ASSERT(st->reconnect_ev != NULL && st->watchdog_ev != NULL && st->watch_ev != NULL);
    struct timeval tv = {0, WATCHDOG_MS * 1000};
    event_add(st->watchdog_ev, &tv);
    if (cfg->nsentinels > 0)
        store_sentinel_watch(-1, 0, st);
    return st;
}

struct store *store_new(struct event_base *base, const struct p2a_config *cfg, const char *name)
{
    struct store *st = store_alloc(base, cfg, name);
    connect_now(st);
    return st;
}

struct store *store_new_subscriber(struct event_base *base, const struct p2a_config *cfg,
                                   const char *name, const char *channel,
                                   store_message_cb on_message, store_sub_state_cb on_state,
                                   void *arg)
{
    struct store *st = store_alloc(base, cfg, name);
    st->channel = xstrdup(channel);
    st->on_message = on_message;
    st->on_sub_state = on_state;
    st->sub_arg = arg;
    connect_now(st);
    return st;
}

void store_free(struct store *st)
{
    if (st == NULL)
        return;
    st->freeing = true;
    drop_connection(st);
    store_drop_helper(&st->sac);
    store_drop_helper(&st->watch);
    event_free(st->reconnect_ev);
    event_free(st->watchdog_ev);
    event_free(st->watch_ev);
    free(st->channel);
    free(st);
}

bool store_connected(const struct store *st)
{
    return st->connected && st->ready;
}

/* ---- issuing commands -------------------------------------------------------------------- */

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct op *op = privdata;
    struct store *st = op->st;
    if (st->ac == ac && st->pending > 0)
        st->pending--;
    st->last_progress_ms = clock_mono_ms();
    redisReply *r = reply;
    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        log_warn("redis.command_failed", "redis(%s): command failed: %.200s", st->name, r->str);
        if (strncmp(r->str, "READONLY", 8) == 0 && st->cfg->nsentinels > 0)
            st->moved = true; /* our primary was demoted: ask the sentinels */
    }
    op->fn(op, r);
    free(op->ctx);
    free(op);
}

static void fail_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct op *op = arg;
    op->fn(op, NULL);
    free(op->ctx);
    free(op);
}

void store_send_op(struct store *st, struct op *op, int argc, const char **argv, const size_t *lens)
{
    op->st = st;
    if (st->ac != NULL && st->ready &&
        redisAsyncCommandArgv(st->ac, on_reply, op, argc, argv, lens) == REDIS_OK) {
        if (st->pending++ == 0)
            st->last_progress_ms = clock_mono_ms();
        return;
    }
    struct timeval zero = {0, 0};
    if (event_base_once(st->base, -1, EV_TIMEOUT, fail_later, op, &zero) != 0)
        P2A_ASSERT(!"event_base_once failed");
}

/* ---- writes that must survive a failover (WAIT) ----------------------------------------- */

static redisReply *reply_copy(const redisReply *r)
{
    redisReply *c = xcalloc(1, sizeof(*c));
    c->type = r->type;
    c->integer = r->integer;
    if (r->str != NULL) {
        c->str = xmalloc(r->len + 1);
        memcpy(c->str, r->str, r->len);
        c->str[r->len] = '\0';
        c->len = r->len;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        c->element = xcalloc(r->elements, sizeof(redisReply *));
        c->elements = r->elements;
        for (size_t i = 0; i < r->elements; i++)
            c->element[i] = reply_copy(r->element[i]);
    }
    return c;
}

static void reply_free(redisReply *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->elements; i++)
        reply_free(c->element[i]);
    free(c->element);
    free(c->str);
    free(c);
}

struct durable {
    struct op *inner;  /* the caller's: gets the command's reply once WAIT agrees */
    redisReply *saved; /* a copy of that reply, hiredis frees its own */
    long long reached; /* replicas WAIT counted; -1 until it answers */
    int left;          /* replies still to come: the command's and WAIT's, in any order when
                        * the connection is down (both fail on a later loop turn) */
};

/* Both replies are in: the caller hears the command's only if WAIT counted enough. */
static void durable_done(struct durable *d, struct store *st)
{
    if (--d->left > 0)
        return;
    long long want = st->cfg->redis_wait_replicas;
    bool ok = d->reached >= want;
    if (d->saved != NULL && store_reply_ok(d->saved) && !ok)
        log_warn("redis.wait_short",
                 "redis(%s): a revocation reached %lld of %lld replicas within %d ms; answered "
                 "UNAVAILABLE",
                 st->name, d->reached, want, st->cfg->redis_wait_timeout_ms);
    d->inner->fn(d->inner, ok ? d->saved : NULL);
    reply_free(d->saved);
    free(d->inner);
    free(d);
}

static void on_durable_command(struct op *op, redisReply *r)
{
    struct durable *d = op->arg;
    d->saved = r != NULL ? reply_copy(r) : NULL;
    durable_done(d, op->st);
}

static void on_durable_wait(struct op *op, redisReply *r)
{
    struct durable *d = op->arg;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        d->reached = r->integer;
    durable_done(d, op->st);
}

void store_send_durable(struct store *st, struct op *op, int argc, const char **argv,
                        const size_t *lens)
{
    if (st->cfg->redis_wait_replicas == 0) {
        store_send_op(st, op, argc, argv, lens);
        return;
    }
    struct durable *d = xcalloc(1, sizeof(*d));
    d->inner = op;
    d->reached = -1;
    d->left = 2;
    op->st = st;
    /* the write, then WAIT on the same connection: its replies come in this order */
    store_send_op(st, store_op_new(on_durable_command, d), argc, argv, lens);
    char n[16], ms[16];
    snprintf(n, sizeof(n), "%d", st->cfg->redis_wait_replicas);
    snprintf(ms, sizeof(ms), "%d", st->cfg->redis_wait_timeout_ms);
    const char *wait[3] = {"WAIT", n, ms};
    store_send_op(st, store_op_new(on_durable_wait, d), 3, wait, NULL);
}

struct op *store_op_new(store_op_fn fn, void *arg)
{
    struct op *op = xcalloc(1, sizeof(*op));
    op->fn = fn;
    op->arg = arg;
    return op;
}

bool store_reply_ok(const redisReply *r)
{
    return r != NULL && r->type != REDIS_REPLY_ERROR;
}

int64_t store_reply_int(const redisReply *r)
{
    if (r == NULL)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return (int64_t)r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

/* The watchdog fails a call once nothing has come back for redis_timeout_ms since the last
 * progress: a script given this deadline (Redis time, ms) writes nothing after it either --
 * less a tenth for the reply's way back -- so that a call answered UNAVAILABLE leaves no
 * trace. */
long long store_write_deadline_ms(const struct store *st)
{
    int64_t waited = st->pending > 0 ? clock_mono_ms() - st->last_progress_ms : 0;
    int64_t margin = (int64_t)st->cfg->redis_timeout_ms * 9 / 10;
    return clock_now_ms() - waited + margin;
}

/* ---- scripts of other modules ---------------------------------------------------------- */

#define EVAL_MAX_ITEMS 64

/* Flattens the reply into strings: an integer becomes its decimal text, nil "", and a
 * reply that is not an array a single item. Nested arrays are not used by our scripts. */
static void eval_reply(struct op *op, redisReply *r)
{
    if (!store_reply_ok(r)) {
        op->cb.eval(op->arg, P2A_ERR_UNAVAILABLE, NULL, NULL, 0);
        return;
    }
    redisReply *one[1] = {r};
    redisReply **items = r->type == REDIS_REPLY_ARRAY ? r->element : one;
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 1;
    if (n > EVAL_MAX_ITEMS)
        n = EVAL_MAX_ITEMS;
    const char *v[EVAL_MAX_ITEMS];
    size_t lens[EVAL_MAX_ITEMS];
    char nums[EVAL_MAX_ITEMS][24];
    for (size_t i = 0; i < n; i++) {
        redisReply *e = items[i];
        if (e->type == REDIS_REPLY_INTEGER) {
            int k = snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)e->integer);
            v[i] = nums[i], lens[i] = (size_t)k;
        } else if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) {
            v[i] = e->str, lens[i] = e->len;
        } else {
            v[i] = "", lens[i] = 0;
        }
    }
    op->cb.eval(op->arg, P2A_OK, v, lens, n);
}

static void eval_send(struct store *st, const char *script, int nkeys, const char *const *args,
                      size_t nargs, bool durable, store_eval_cb cb, void *arg)
{
    const char *argv[3 + EVAL_MAX_ITEMS];
    char nk[16];
    P2A_ASSERT(nargs <= EVAL_MAX_ITEMS);
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[0] = "EVAL";
    argv[1] = script;
    argv[2] = nk;
    for (size_t i = 0; i < nargs; i++)
        argv[3 + i] = args[i];
    struct op *op = store_op_new(eval_reply, arg);
    op->cb.eval = cb;
    if (durable)
        store_send_durable(st, op, (int)(3 + nargs), argv, NULL);
    else
        store_send_op(st, op, (int)(3 + nargs), argv, NULL);
}

void store_eval(struct store *st, const char *script, int nkeys, const char *const *args,
                size_t nargs, store_eval_cb cb, void *arg)
{
    eval_send(st, script, nkeys, args, nargs, false, cb, arg);
}

void store_eval_durable(struct store *st, const char *script, int nkeys, const char *const *args,
                        size_t nargs, store_eval_cb cb, void *arg)
{
    eval_send(st, script, nkeys, args, nargs, true, cb, arg);
}

/* ---- memory ------------------------------------------------------------------------------ */

/* The number after "<field>:" at the start of a line of an INFO text, or -1. */
static int64_t info_field(const char *text, size_t len, const char *field)
{
    size_t n = strlen(field);
    const char *end = text + len;
    for (const char *p = text; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol != NULL ? eol + 1 : end;
        if ((size_t)(next - p) > n + 1 && memcmp(p, field, n) == 0 && p[n] == ':') {
            int64_t v = -1;
            for (const char *d = p + n + 1;
                 d < next && *d >= '0' && *d <= '9' && v < INT64_MAX / 10; d++)
                v = (v < 0 ? 0 : v) * 10 + (*d - '0');
            return v;
        }
        p = next;
    }
    return -1;
}

static void memory_reply(struct op *op, redisReply *r)
{
    int64_t used = -1, max = -1;
    if (store_reply_ok(r) && r->type == REDIS_REPLY_STRING) {
        used = info_field(r->str, r->len, "used_memory");
        max = info_field(r->str, r->len, "maxmemory");
    }
    if (used < 0 || max < 0)
        op->cb.memory(op->arg, P2A_ERR_UNAVAILABLE, 0, 0);
    else
        op->cb.memory(op->arg, P2A_OK, used, max);
}

void store_memory(struct store *st, store_memory_cb cb, void *arg)
{
    const char *argv[] = {"INFO", "memory"};
    struct op *op = store_op_new(memory_reply, arg);
    op->cb.memory = cb;
    store_send_op(st, op, 2, argv, NULL);
}
