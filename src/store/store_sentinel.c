/* store_sentinel.c -- Sentinel mode (PIPE2_AUTH_REDIS_SENTINELS) of the store's connection
 * (store_redis.c): finding the primary and following a failover.
 *
 * Before each connection the sentinels are asked for the primary (SENTINEL
 * get-master-addr-by-name, one sentinel after another, round after round with backoff), and
 * the first command on the new connection is ROLE: nothing is sent until it says "master", so
 * a stale answer never gets a write (or a read of a stale revocation log). A second
 * connection to a sentinel listens for +switch-master, so that a failover is followed at
 * once; the watchdog acts on st->moved, outside hiredis's callbacks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "store_internal.h"

/* Sentinel mode: the first reply on a new connection. Only a primary gets commands. */
void store_sentinel_on_role(redisAsyncContext *ac, void *reply, void *privdata)
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

/* This sentinel could not name the primary: the next one, or after a pause, all again. */
static void sentinel_failed(struct store *st, const char *why)
{
    if (st->freeing)
        return;
    if (++st->asked < st->cfg->nsentinels) {
        store_sentinel_ask(st);
        return;
    }
    st->asked = 0;
    if (!st->logged_down)
        log_warn("redis.no_primary", "redis(%s): no sentinel named the primary '%s' (%s)", st->name,
                 st->cfg->redis_sentinel_master, why);
    st->logged_down = true;
    store_schedule_reconnect(st);
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
    store_connect_redis(st);
}

void store_sentinel_ask(struct store *st)
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
    store_queue_auth(st, ac);
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

void store_sentinel_watch(evutil_socket_t fd, short what, void *arg)
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
    store_keepalive(ac->c.fd);
    store_queue_auth(st, ac);
    const char *argv[2] = {"SUBSCRIBE", "+switch-master"};
    redisAsyncCommandArgv(ac, on_switch, NULL, 2, argv, NULL);
}

bool store_sentinel_overdue(struct store *st)
{
    if (st->sac == NULL || clock_mono_ms() - st->asked_at_ms <= st->cfg->redis_timeout_ms)
        return false;
    store_drop_helper(&st->sac); /* a sentinel that accepted and never answered */
    sentinel_failed(st, "the sentinel did not answer in time");
    return true;
}
