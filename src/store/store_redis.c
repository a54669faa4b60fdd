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
 * callback; hiredis hands it back with the reply (or NULL on failure). hiredis types stay
 * in this file.
 *
 * Sentinel mode (PIPE2_AUTH_REDIS_SENTINELS): before each connection the sentinels are asked
 * for the primary (SENTINEL get-master-addr-by-name, one sentinel after another), and the
 * first command on the new connection is ROLE: nothing is sent until it says "master", so a
 * stale answer never gets a write (or a read of a stale revocation log). A second connection
 * to a sentinel listens for +switch-master, so that a failover is followed at once, and a
 * READONLY answer (our primary was demoted) sends us back to the sentinels.
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

struct store {
    struct event_base *base;
    const struct p2a_config *cfg;
    redisAsyncContext *ac;
    char host[256]; /* the Redis we use: the configured one, or the primary named */
    int port;
    atomic_bool ready; /* commands may go: at once for one Redis; after ROLE for Sentinel */
    /* Sentinel mode */
    redisAsyncContext *sac;   /* asking a sentinel for the primary */
    redisAsyncContext *watch; /* subscribed to +switch-master */
    size_t next_sentinel;     /* asked in the configured order, round after round */
    size_t next_watch;        /* the watch starts at the last one */
    size_t asked;             /* sentinels asked in this round */
    int64_t asked_at_ms;      /* when the current question went out */
    bool moved;               /* the primary moved: reconnect on the next watchdog turn */
    struct event *watch_ev;   /* reconnects the watch */
    struct event *reconnect_ev;
    struct event *watchdog_ev;
    int backoff_ms;
    size_t pending;
    int64_t last_progress_ms;
    atomic_bool connected; /* read by the metrics scraper on another thread */
    bool freeing;
    bool logged_down;
    char name[32];
    /* subscriber mode */
    char *channel; /* NULL for a command connection */
    store_message_cb on_message;
    store_sub_state_cb on_sub_state;
    void *sub_arg;
};

static void connect_now(struct store *st);

/* ---- connection lifecycle ---------------------------------------------------------------- */

static void schedule_reconnect(struct store *st)
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
        schedule_reconnect(st);
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
    schedule_reconnect(st);
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
 * TCP keepalive probes after 5 s of silence, 3 times 2 s apart. */
static void keepalive(int fd)
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
static void queue_auth(struct store *st, redisAsyncContext *ac)
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

/* Sentinel mode: the first reply on a new connection. Only a primary gets commands. */
static void on_role(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    struct store *st = ac->data;
    redisReply *r = reply;
    if (st == NULL || st->ac != ac || st->freeing)
        return;
    if (st->pending > 0)
        st->pending--;
    st->last_progress_ms = clock_mono_ms();
    bool primary = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                   r->element[0]->type == REDIS_REPLY_STRING &&
                   strcmp(r->element[0]->str, "master") == 0;
    if (primary) {
        st->ready = true;
        log_info("redis.primary", "redis(%s): %s:%d is the primary", st->name, st->host, st->port);
        return;
    }
    log_warn("redis.not_primary",
             "redis(%s): %s:%d is not the primary (a stale answer, or a failover under way); "
             "asking the sentinels again",
             st->name, st->host, st->port);
    st->moved = true; /* acted on by the watchdog, outside hiredis's callback */
}

static void connect_redis(struct store *st)
{
    redisAsyncContext *ac = redisAsyncConnect(st->host, st->port);
    if (ac == NULL || ac->err) {
        if (!st->logged_down)
            log_warn("redis.connect_failed", "redis(%s): cannot connect: %s", st->name,
                     ac ? ac->errstr : "out of memory");
        st->logged_down = true;
        if (ac != NULL)
            redisAsyncFree(ac);
        schedule_reconnect(st);
        return;
    }
    ac->data = st;
    st->ac = ac;
    st->ready = st->cfg->nsentinels == 0;
    redisLibeventAttach(ac, st->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    queue_auth(st, ac);
    if (st->cfg->redis_db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", st->cfg->redis_db);
        const char *argv[2] = {"SELECT", db};
        if (redisAsyncCommandArgv(ac, on_handshake_reply, "SELECT", 2, argv, NULL) == REDIS_OK)
            st->pending++;
    }
    if (!st->ready) {
        const char *argv[1] = {"ROLE"};
        if (redisAsyncCommandArgv(ac, on_role, NULL, 1, argv, NULL) == REDIS_OK)
            st->pending++;
    }
    if (st->channel != NULL) {
        keepalive(ac->c.fd);
        const char *argv[2] = {"SUBSCRIBE", st->channel};
        redisAsyncCommandArgv(ac, on_subscribed_reply, NULL, 2, argv, NULL);
    }
    st->last_progress_ms = clock_mono_ms();
}

/* ---- Sentinel mode: finding the primary, following a failover ------------------------------- */

static void ask_sentinel(struct store *st);

/* This sentinel could not name the primary: the next one, or after a pause, all again. */
static void sentinel_failed(struct store *st, const char *why)
{
    if (st->freeing)
        return;
    if (++st->asked < st->cfg->nsentinels) {
        ask_sentinel(st);
        return;
    }
    st->asked = 0;
    if (!st->logged_down)
        log_warn("redis.no_primary", "redis(%s): no sentinel named the primary '%s' (%s)", st->name,
                 st->cfg->redis_sentinel_master, why);
    st->logged_down = true;
    schedule_reconnect(st);
}

static void on_sentinel_connect(const redisAsyncContext *ac, int status)
{
    struct store *st = ac->data;
    if (st == NULL || st->sac != ac || status == REDIS_OK)
        return;
    st->sac = NULL; /* hiredis frees it after this callback */
    sentinel_failed(st, ac->errstr);
}

static void on_sentinel_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct store *st = ac->data;
    if (st == NULL || st->sac != ac)
        return; /* done with it, or dropped by us */
    st->sac = NULL;
    sentinel_failed(st, "the sentinel closed the connection");
}

static void on_sentinel_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    struct store *st = ac->data;
    redisReply *r = reply;
    if (st == NULL || st->sac != ac)
        return;
    st->sac = NULL; /* its disconnect is ours now */
    redisAsyncDisconnect(ac);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[0]->len >= sizeof(st->host)) {
        sentinel_failed(st, r && r->type == REDIS_REPLY_ERROR ? r->str : "no such primary");
        return;
    }
    snprintf(st->host, sizeof(st->host), "%s", r->element[0]->str);
    st->port = (int)strtol(r->element[1]->str, NULL, 10);
    st->asked = 0;
    connect_redis(st);
}

static void ask_sentinel(struct store *st)
{
    const struct config_hostport *h =
        &st->cfg->sentinels[st->next_sentinel++ % st->cfg->nsentinels];
    redisAsyncContext *ac = redisAsyncConnect(h->host, h->port);
    if (ac == NULL || ac->err) {
        if (ac != NULL)
            redisAsyncFree(ac);
        sentinel_failed(st, "cannot connect to a sentinel");
        return;
    }
    ac->data = st;
    st->sac = ac;
    st->asked_at_ms = clock_mono_ms();
    redisLibeventAttach(ac, st->base);
    redisAsyncSetConnectCallback(ac, on_sentinel_connect);
    redisAsyncSetDisconnectCallback(ac, on_sentinel_disconnect);
    queue_auth(st, ac);
    const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", st->cfg->redis_sentinel_master};
    redisAsyncCommandArgv(ac, on_sentinel_reply, NULL, 3, argv, NULL);
}

/* +switch-master "<name> <old ip> <old port> <new ip> <new port>" */
static void on_switch(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    struct store *st = ac->data;
    redisReply *r = reply;
    if (st == NULL || st->watch != ac || st->freeing || r == NULL || r->type != REDIS_REPLY_ARRAY ||
        r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, "message") != 0 || r->element[2]->type != REDIS_REPLY_STRING)
        return;
    /* the name, then the new address: the last two words */
    const char *msg = r->element[2]->str;
    size_t nl = strcspn(msg, " ");
    const char *port = strrchr(msg, ' ');
    if (nl != strlen(st->cfg->redis_sentinel_master) ||
        strncmp(msg, st->cfg->redis_sentinel_master, nl) != 0 || port == NULL || port == msg)
        return;
    const char *host = port - 1;
    while (host > msg && host[-1] != ' ')
        host--;
    char newh[256];
    snprintf(newh, sizeof(newh), "%.*s", (int)(port - host), host);
    int newp = (int)strtol(port + 1, NULL, 10);
    log_info("redis.failover", "redis(%s): the sentinels moved the primary to %s:%d", st->name,
             newh, newp);
    if (strcmp(newh, st->host) != 0 || newp != st->port)
        st->moved = true;
}

static void on_watch_gone(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct store *st = ac->data;
    if (st == NULL || st->watch != ac || st->freeing)
        return;
    st->watch = NULL; /* hiredis frees it */
    struct timeval tv = {1, 0};
    evtimer_add(st->watch_ev, &tv);
}

static void on_watch_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK)
        on_watch_gone(ac, status);
}

static void watch_start(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct store *st = arg;
    size_t n = st->cfg->nsentinels;
    const struct config_hostport *h = &st->cfg->sentinels[n - 1 - st->next_watch++ % n];
    redisAsyncContext *ac = redisAsyncConnect(h->host, h->port);
    if (ac == NULL || ac->err) {
        if (ac != NULL)
            redisAsyncFree(ac);
        struct timeval tv = {1, 0};
        evtimer_add(st->watch_ev, &tv);
        return;
    }
    ac->data = st;
    st->watch = ac;
    redisLibeventAttach(ac, st->base);
    redisAsyncSetConnectCallback(ac, on_watch_connect);
    redisAsyncSetDisconnectCallback(ac, on_watch_gone);
    keepalive(ac->c.fd);
    queue_auth(st, ac);
    const char *argv[2] = {"SUBSCRIBE", "+switch-master"};
    redisAsyncCommandArgv(ac, on_switch, NULL, 2, argv, NULL);
}

static void connect_now(struct store *st)
{
    if (st->cfg->nsentinels == 0)
        connect_redis(st);
    else if (st->sac == NULL)
        ask_sentinel(st);
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

/* Closes a helper connection (to a sentinel) without its callbacks acting on st. */
static void drop_helper(redisAsyncContext **slot)
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
    if (st->sac != NULL && clock_mono_ms() - st->asked_at_ms > st->cfg->redis_timeout_ms) {
        drop_helper(&st->sac); /* a sentinel that accepted and never answered */
        sentinel_failed(st, "the sentinel did not answer in time");
        return;
    }
    if (st->ac != NULL && st->pending > 0 &&
        clock_mono_ms() - st->last_progress_ms > st->cfg->redis_timeout_ms) {
        log_warn("redis.timeout", "redis(%s): no reply for %d ms; dropping the connection",
                 st->name, st->cfg->redis_timeout_ms);
        st->logged_down = true;
        drop_connection(st);
        schedule_reconnect(st);
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
    st->watch_ev = evtimer_new(base, watch_start, st);
    P2A_ASSERT(st->reconnect_ev != NULL && st->watchdog_ev != NULL && st->watch_ev != NULL);
    struct timeval tv = {0, WATCHDOG_MS * 1000};
    event_add(st->watchdog_ev, &tv);
    if (cfg->nsentinels > 0)
        watch_start(-1, 0, st);
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
    drop_helper(&st->sac);
    drop_helper(&st->watch);
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
