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
#include "store_keys.h"
#include "xalloc.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define WATCHDOG_MS 100
#define RECORD_GRACE_S (30LL * 86400)

struct store {
    struct event_base *base;
    const struct p2a_config *cfg;
    redisAsyncContext *ac;
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

struct op;
typedef void (*op_fn)(struct op *op, redisReply *r);

struct op {
    struct store *st;
    op_fn fn;
    union {
        store_done_cb done;
        store_revoke_cb revoke;
        store_list_cb list;
        store_revocations_cb revocations;
        store_eval_cb eval;
    } cb;
    void *arg;
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
            log_warn("redis.connect_failed", "redis(%s): cannot connect to %s:%d: %s", st->name, st->cfg->redis_host,
                     st->cfg->redis_port, ac->errstr);
        st->logged_down = true;
        st->ac = NULL; /* hiredis frees it after this callback */
        st->connected = false;
        schedule_reconnect(st);
        return;
    }
    st->connected = true;
    st->backoff_ms = BACKOFF_MIN_MS;
    if (st->logged_down)
        log_info("redis.connected", "redis(%s): connected to %s:%d", st->name, st->cfg->redis_host,
                 st->cfg->redis_port);
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
        log_warn("redis.connection_lost", "redis(%s): connection lost: %s", st->name, ac->errstr[0] ? ac->errstr : "closed");
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
        log_error("redis.handshake_refused", "redis(%s): %s refused: %s", st->name, (const char *)privdata, r->str);
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

static void connect_now(struct store *st)
{
    redisAsyncContext *ac = redisAsyncConnect(st->cfg->redis_host, st->cfg->redis_port);
    if (ac == NULL || ac->err) {
        if (!st->logged_down)
            log_warn("redis.connect_failed", "redis(%s): cannot connect: %s", st->name, ac ? ac->errstr : "out of memory");
        st->logged_down = true;
        if (ac != NULL)
            redisAsyncFree(ac);
        schedule_reconnect(st);
        return;
    }
    ac->data = st;
    st->ac = ac;
    redisLibeventAttach(ac, st->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (st->cfg->redis_password != NULL) {
        const char *argv[3];
        int argc = 0;
        argv[argc++] = "AUTH";
        if (st->cfg->redis_user != NULL)
            argv[argc++] = st->cfg->redis_user;
        argv[argc++] = st->cfg->redis_password;
        if (redisAsyncCommandArgv(ac, on_handshake_reply, "AUTH", argc, argv, NULL) == REDIS_OK)
            st->pending++;
    }
    if (st->cfg->redis_db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", st->cfg->redis_db);
        const char *argv[2] = {"SELECT", db};
        if (redisAsyncCommandArgv(ac, on_handshake_reply, "SELECT", 2, argv, NULL) == REDIS_OK)
            st->pending++;
    }
    if (st->channel != NULL) {
        keepalive(ac->c.fd);
        const char *argv[2] = {"SUBSCRIBE", st->channel};
        redisAsyncCommandArgv(ac, on_subscribed_reply, NULL, 2, argv, NULL);
    }
    st->last_progress_ms = clock_mono_ms();
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
    st->pending = 0;
    if (ac != NULL)
        redisAsyncFree(ac);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct store *st = arg;
    if (st->ac != NULL && st->pending > 0 &&
        clock_mono_ms() - st->last_progress_ms > st->cfg->redis_timeout_ms) {
        log_warn("redis.timeout", "redis(%s): no reply for %d ms; dropping the connection", st->name,
                 st->cfg->redis_timeout_ms);
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
    st->reconnect_ev = evtimer_new(base, on_reconnect_timer, st);
    st->watchdog_ev = event_new(base, -1, EV_PERSIST, on_watchdog, st);
    P2A_ASSERT(st->reconnect_ev != NULL && st->watchdog_ev != NULL);
    struct timeval tv = {0, WATCHDOG_MS * 1000};
    event_add(st->watchdog_ev, &tv);
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
    event_free(st->reconnect_ev);
    event_free(st->watchdog_ev);
    free(st->channel);
    free(st);
}

bool store_connected(const struct store *st)
{
    return st->connected;
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
    }
    op->fn(op, r);
    free(op);
}

static void fail_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct op *op = arg;
    op->fn(op, NULL);
    free(op);
}

static void send_op(struct store *st, struct op *op, int argc, const char **argv,
                    const size_t *lens)
{
    op->st = st;
    if (st->ac != NULL &&
        redisAsyncCommandArgv(st->ac, on_reply, op, argc, argv, lens) == REDIS_OK) {
        if (st->pending++ == 0)
            st->last_progress_ms = clock_mono_ms();
        return;
    }
    struct timeval zero = {0, 0};
    if (event_base_once(st->base, -1, EV_TIMEOUT, fail_later, op, &zero) != 0)
        P2A_ASSERT(!"event_base_once failed");
}

static struct op *op_new(op_fn fn, void *arg)
{
    struct op *op = xcalloc(1, sizeof(*op));
    op->fn = fn;
    op->arg = arg;
    return op;
}

static bool reply_ok(const redisReply *r)
{
    return r != NULL && r->type != REDIS_REPLY_ERROR;
}

static int64_t reply_int(const redisReply *r)
{
    if (r == NULL)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return (int64_t)r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

/* ---- PAT records --------------------------------------------------------------------------- */

/* ARGV[9]: the latest Redis time (ms) at which the record may still be written; past it the
 * caller has given up (and told its client so), and nothing is written: {0}. */
static const char create_lua[] =
    "local t = redis.call('TIME')\n"
    "if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[9]) then\n"
    "  return 0\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'jti', ARGV[1], 'user_id', ARGV[2], 'name', ARGV[3],"
    " 'scope', ARGV[4], 'created_at', ARGV[5], 'expires_at', ARGV[6], 'last_used_at', 0,"
    " 'revoked_at', 0)\n"
    "redis.call('EXPIREAT', KEYS[1], ARGV[8])\n"
    "redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])\n"
    "return 1\n";

static void done_reply(struct op *op, redisReply *r)
{
    op->cb.done(op->arg, reply_ok(r) ? P2A_OK : P2A_ERR_UNAVAILABLE);
}

/* A script that answers 0 when it wrote nothing. */
static void written_reply(struct op *op, redisReply *r)
{
    op->cb.done(op->arg, reply_ok(r) && reply_int(r) == 1 ? P2A_OK : P2A_ERR_UNAVAILABLE);
}

static char *pat_key(const char *jti)
{
    size_t n = strlen(jti) + 9;
    char *k = xmalloc(n);
    snprintf(k, n, "p2a:pat:%s", jti);
    return k;
}

static char *user_key(const char *user)
{
    size_t n = strlen(user) + 20;
    char *k = xmalloc(n);
    snprintf(k, n, "p2a:user:%s:pats", user);
    return k;
}

void store_pat_create(struct store *st, const struct pat_record *r, store_done_cb cb, void *arg)
{
    char created[24], expires[24], created_ms[24], drop_at[24], deadline[24];
    /* the watchdog fails this call once nothing has come back for redis_timeout_ms since the
     * last progress: write nothing after that either (less a tenth for the reply's way
     * back), so that a call answered UNAVAILABLE leaves no record behind */
    int64_t waited = st->pending > 0 ? clock_mono_ms() - st->last_progress_ms : 0;
    int64_t margin = (int64_t)st->cfg->redis_timeout_ms * 9 / 10;
    long long until = clock_now_ms() - waited + margin;
    snprintf(deadline, sizeof(deadline), "%lld", until);
    snprintf(created, sizeof(created), "%lld", (long long)r->created_at);
    snprintf(expires, sizeof(expires), "%lld", (long long)r->expires_at);
    snprintf(created_ms, sizeof(created_ms), "%lld", (long long)r->created_ms);
    snprintf(drop_at, sizeof(drop_at), "%lld", (long long)(r->expires_at + RECORD_GRACE_S));
    char *k1 = pat_key(r->jti), *k2 = user_key(r->user_id);
    const char *argv[] = {"EVAL", create_lua, "2", k1, k2, r->jti, r->user_id, r->name,
                          r->scope, created, expires, created_ms, drop_at, deadline};
    struct op *op = op_new(written_reply, arg);
    op->cb.done = cb;
    send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
    free(k1);
    free(k2);
}

/* Returns {-1} when absent (or another user's), {1, revoked_at, 0, exp} when already revoked,
 * {0, revoked_at, seq, exp} when revoked now. */
static const char revoke_lua[] = STORE_LUA_REVOKE
    "if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end\n"
    "if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'user_id') ~= ARGV[2] then\n"
    "  return {-1}\n"
    "end\n"
    "local was = tonumber(redis.call('HGET', KEYS[1], 'revoked_at') or '0')\n"
    "local exp = redis.call('HGET', KEYS[1], 'expires_at')\n"
    "if was ~= 0 then return {1, was, 0, tonumber(exp)} end\n"
    "redis.call('HSET', KEYS[1], 'revoked_at', ARGV[3])\n"
    "local seq = revoke(ARGV[1], exp, ARGV[4]) or 0\n"
    "return {0, tonumber(ARGV[3]), seq, tonumber(exp)}\n";

static void revoke_reply(struct op *op, redisReply *r)
{
    if (!reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        op->cb.revoke(op->arg, P2A_ERR_UNAVAILABLE, false, 0, 0);
        return;
    }
    int64_t code = reply_int(r->element[0]);
    if (code < 0 || r->elements < 4) {
        op->cb.revoke(op->arg, P2A_ERR_NOT_FOUND, false, 0, 0);
        return;
    }
    op->cb.revoke(op->arg, P2A_OK, code == 1, reply_int(r->element[1]),
                  reply_int(r->element[3]));
}

void store_pat_revoke(struct store *st, const char *jti, const char *user_id, int64_t now_ms,
                      store_revoke_cb cb, void *arg)
{
    char nows[24], now_mss[24];
    snprintf(nows, sizeof(nows), "%lld", (long long)(now_ms / 1000));
    snprintf(now_mss, sizeof(now_mss), "%lld", (long long)now_ms);
    char *k1 = pat_key(jti);
    const char *argv[] = {"EVAL", revoke_lua, "1", k1, jti, user_id, nows, now_mss};
    struct op *op = op_new(revoke_reply, arg);
    op->cb.revoke = cb;
    send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
    free(k1);
}

/* Flat reply: 8 fields per token, newest first. Index entries whose record has gone
 * (30 days after expiry) are dropped on the way. */
static const char list_lua[] =
    "local out = {}\n"
    "local jtis = redis.call('ZREVRANGE', KEYS[1], 0, 4999)\n"
    "for _, jti in ipairs(jtis) do\n"
    "  local h = redis.call('HMGET', ARGV[2] .. jti, 'user_id', 'name', 'scope',"
    " 'created_at', 'expires_at', 'last_used_at', 'revoked_at')\n"
    "  if not h[1] then\n"
    "    redis.call('ZREM', KEYS[1], jti)\n"
    "  elseif ARGV[1] == '1' or h[7] == '0' then\n"
    "    out[#out + 1] = jti\n"
    "    for i = 1, 7 do out[#out + 1] = h[i] end\n"
    "    if #out >= tonumber(ARGV[3]) * 8 then break end\n"
    "  end\n"
    "end\n"
    "return out\n";

static const char *reply_str(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "";
}

static void list_reply(struct op *op, redisReply *r)
{
    if (!reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements % 8 != 0) {
        op->cb.list(op->arg, P2A_ERR_UNAVAILABLE, NULL, 0);
        return;
    }
    size_t n = r->elements / 8;
    struct pat_record *v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        redisReply **e = r->element + i * 8;
        v[i].jti = reply_str(e[0]);
        v[i].user_id = reply_str(e[1]);
        v[i].name = reply_str(e[2]);
        v[i].scope = reply_str(e[3]);
        v[i].created_at = reply_int(e[4]);
        v[i].expires_at = reply_int(e[5]);
        v[i].last_used_at = reply_int(e[6]);
        v[i].revoked_at = reply_int(e[7]);
    }
    op->cb.list(op->arg, P2A_OK, v, n);
    free(v);
}

void store_pat_list(struct store *st, const char *user_id, bool include_revoked,
                    store_list_cb cb, void *arg)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", STORE_LIST_MAX);
    char *k = user_key(user_id);
    const char *argv[] = {"EVAL", list_lua, "1", k, include_revoked ? "1" : "0", "p2a:pat:",
                          limit};
    struct op *op = op_new(list_reply, arg);
    op->cb.list = cb;
    send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
    free(k);
}

/* ---- revocations -------------------------------------------------------------------------- */

static const char load_lua[] =
    "return {redis.call('GET', KEYS[2]) or '0', redis.call('ZRANGEBYSCORE', KEYS[1],"
    " '(' .. ARGV[1], '+inf', 'WITHSCORES')}\n";

static void revocations_reply(struct op *op, redisReply *r)
{
    if (!reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements % 2 != 0) {
        op->cb.revocations(op->arg, P2A_ERR_UNAVAILABLE, NULL, 0, 0);
        return;
    }
    uint64_t seq = (uint64_t)reply_int(r->element[0]);
    redisReply *set = r->element[1];
    size_t n = set->elements / 2;
    struct revocation *v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].jti = reply_str(set->element[2 * i]);
        v[i].exp = reply_int(set->element[2 * i + 1]);
    }
    op->cb.revocations(op->arg, P2A_OK, v, n, seq);
    free(v);
}

void store_revocations_load(struct store *st, int64_t now, store_revocations_cb cb, void *arg)
{
    char nows[24];
    snprintf(nows, sizeof(nows), "%lld", (long long)now);
    const char *argv[] = {"EVAL", load_lua, "2", STORE_KEY_REVOKED, STORE_KEY_REVSEQ, nows};
    struct op *op = op_new(revocations_reply, arg);
    op->cb.revocations = cb;
    send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
}

static const char since_lua[] =
    "local cur = redis.call('GET', KEYS[2]) or '0'\n"
    "local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES',"
    " 'LIMIT', 0, tonumber(ARGV[2]))\n"
    "local out = {}\n"
    "for i = 1, #rows, 2 do\n"
    "  out[#out + 1] = rows[i]\n"
    "  out[#out + 1] = redis.call('ZSCORE', KEYS[3], rows[i]) or '0'\n"
    "  out[#out + 1] = rows[i + 1]\n"
    "end\n"
    "return {cur, out}\n";

static void since_reply(struct op *op, redisReply *r)
{
    if (!reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements % 3 != 0) {
        op->cb.revocations(op->arg, P2A_ERR_UNAVAILABLE, NULL, 0, 0);
        return;
    }
    uint64_t seq = (uint64_t)reply_int(r->element[0]);
    redisReply *rows = r->element[1];
    size_t n = rows->elements / 3;
    struct revocation *v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].jti = reply_str(rows->element[3 * i]);
        v[i].exp = reply_int(rows->element[3 * i + 1]);
        v[i].seq = (uint64_t)reply_int(rows->element[3 * i + 2]);
    }
    op->cb.revocations(op->arg, P2A_OK, v, n, seq);
    free(v);
}

void store_revocations_since(struct store *st, uint64_t after, size_t limit,
                             store_revocations_cb cb, void *arg)
{
    char afters[24], limits[24];
    snprintf(afters, sizeof(afters), "%llu", (unsigned long long)after);
    snprintf(limits, sizeof(limits), "%zu", limit);
    const char *argv[] = {"EVAL",       since_lua,     "3",    STORE_KEY_REVLOG,
                          STORE_KEY_REVSEQ, STORE_KEY_REVOKED, afters, limits};
    struct op *op = op_new(since_reply, arg);
    op->cb.revocations = cb;
    send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
}

static const char purge_lua[] =
    "local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 10000)\n"
    "for i = 1, #gone, 500 do\n"
    "  local chunk = {unpack(gone, i, math.min(i + 499, #gone))}\n"
    "  redis.call('ZREM', KEYS[1], unpack(chunk))\n"
    "  redis.call('ZREM', KEYS[2], unpack(chunk))\n"
    "end\n"
    "return #gone\n";

static void purge_reply(struct op *op, redisReply *r)
{
    if (!reply_ok(r) || r->type != REDIS_REPLY_INTEGER) {
        op->cb.revocations(op->arg, P2A_ERR_UNAVAILABLE, NULL, 0, 0);
        return;
    }
    op->cb.revocations(op->arg, P2A_OK, NULL, (size_t)r->integer, 0);
}

void store_revocations_purge(struct store *st, int64_t now, store_revocations_cb cb, void *arg)
{
    char nows[24];
    snprintf(nows, sizeof(nows), "%lld", (long long)now);
    const char *argv[] = {"EVAL", purge_lua, "2", STORE_KEY_REVOKED, STORE_KEY_REVLOG, nows};
    struct op *op = op_new(purge_reply, arg);
    op->cb.revocations = cb;
    send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
}

/* ---- last used ----------------------------------------------------------------------------- */

static const char last_used_lua[] =
    "for i, k in ipairs(KEYS) do\n"
    "  local cur = redis.call('HGET', k, 'last_used_at')\n"
    "  if cur and tonumber(cur) < tonumber(ARGV[i]) then\n"
    "    redis.call('HSET', k, 'last_used_at', ARGV[i])\n"
    "  end\n"
    "end\n"
    "return #KEYS\n";

void store_last_used(struct store *st, const char *const *jtis, const int64_t *ts, size_t n,
                     store_done_cb cb, void *arg)
{
    size_t argc = 3 + 2 * n;
    const char **argv = xcalloc(argc, sizeof(*argv));
    char **owned = xcalloc(2 * n + 1, sizeof(*owned));
    char nkeys[24];
    snprintf(nkeys, sizeof(nkeys), "%zu", n);
    argv[0] = "EVAL";
    argv[1] = last_used_lua;
    argv[2] = nkeys;
    for (size_t i = 0; i < n; i++) {
        owned[i] = pat_key(jtis[i]);
        owned[n + i] = xmalloc(24);
        snprintf(owned[n + i], 24, "%lld", (long long)ts[i]);
        argv[3 + i] = owned[i];
        argv[3 + n + i] = owned[n + i];
    }
    struct op *op = op_new(done_reply, arg);
    op->cb.done = cb;
    send_op(st, op, (int)argc, argv, NULL);
    for (size_t i = 0; i < 2 * n; i++)
        free(owned[i]);
    free(owned);
    free(argv);
}

/* ---- scripts of other modules ---------------------------------------------------------- */

#define EVAL_MAX_ITEMS 64

/* Flattens the reply into strings: an integer becomes its decimal text, nil "", and a
 * reply that is not an array a single item. Nested arrays are not used by our scripts. */
static void eval_reply(struct op *op, redisReply *r)
{
    if (!reply_ok(r)) {
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

void store_eval(struct store *st, const char *script, int nkeys, const char *const *args,
                size_t nargs, store_eval_cb cb, void *arg)
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
    struct op *op = op_new(eval_reply, arg);
    op->cb.eval = cb;
    send_op(st, op, (int)(3 + nargs), argv, NULL);
}
