/* store_pat.c -- PAT records, revocations and last-used marks as Lua scripts (see store.h;
 * the connection is store_redis.c's). */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "store_internal.h"
#include "store_keys.h"
#include "xalloc.h"

#define RECORD_GRACE_S (30LL * 86400) /* a PAT record outlives its token by this */

/* ---- PAT records --------------------------------------------------------------------------- */

/* ARGV[9]: the latest Redis time (ms) at which the record may still be written; past it the
 * caller has given up (and told its client so), and nothing is written: {0}. ARGV[10] and
 * ARGV[11]: at most that many live PATs of the user, at most that many made an hour (0: no
 * limit). KEYS[4], the user's live PATs, is pruned first of those expired or in the revoked
 * set (KEYS[6]): it holds at most the cap, give or take the PATs issued uncapped. */
static const char create_lua[] =
    "if redis.call('EXISTS', KEYS[3]) == 0 then return -1 end\n" /* users first: one subject */
    "if " STORE_LUA_USER_DISABLED("KEYS[3]") " then return -2 end\n"
                                             "local t = redis.call('TIME')\n"
                                             "if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) "
                                             "/ 1000) > tonumber(ARGV[9]) then\n"
                                             "  return 0\n"
                                             "end\n"
                                             "local cap, per_hour = tonumber(ARGV[10]), "
                                             "tonumber(ARGV[11])\n"
                                             "if cap > 0 then\n"
                                             "  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', "
                                             "t[1])\n"
                                             "  for _, j in ipairs(redis.call('ZRANGE', KEYS[4], "
                                             "0, -1)) do\n"
                                             "    if redis.call('ZSCORE', KEYS[6], j) then "
                                             "redis.call('ZREM', KEYS[4], j) end\n"
                                             "  end\n"
                                             "  if redis.call('ZCARD', KEYS[4]) >= cap then "
                                             "return {-3, cap} end\n"
                                             "end\n"
                                             "if per_hour > 0 then\n"
                                             "  if tonumber(redis.call('GET', KEYS[5]) or '0') >= "
                                             "per_hour then\n"
                                             "    return {-4, math.max(redis.call('TTL', "
                                             "KEYS[5]), 1)}\n"
                                             "  end\n"
                                             "  redis.call('INCR', KEYS[5])\n"
                                             "  if redis.call('TTL', KEYS[5]) < 0 then "
                                             "redis.call('EXPIRE', KEYS[5], 3600) end\n"
                                             "end\n"
                                             "redis.call('HSET', KEYS[1], 'jti', ARGV[1], "
                                             "'user_id', ARGV[2], 'name', ARGV[3],"
                                             " 'scope', ARGV[4], 'created_at', ARGV[5], "
                                             "'expires_at', ARGV[6], 'last_used_at', 0,"
                                             " 'revoked_at', 0)\n"
                                             "redis.call('EXPIREAT', KEYS[1], ARGV[8])\n"
                                             "redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])\n"
                                             "redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])\n"
                                             "if redis.call('TTL', KEYS[4]) < tonumber(ARGV[6]) - "
                                             "tonumber(t[1]) then\n"
                                             "  redis.call('EXPIREAT', KEYS[4], ARGV[6])\n"
                                             "end\n"
                                             "return 1\n";

static void done_reply(struct op *op, redisReply *r)
{
    op->cb.done(op->arg, store_reply_ok(r) ? P2A_OK : P2A_ERR_UNAVAILABLE);
}

/* A script that answers 0 when it wrote nothing, -1 for an unknown user, -2 a disabled one. */
static void written_reply(struct op *op, redisReply *r)
{
    int64_t v = store_reply_ok(r) ? store_reply_int(r) : 0;
    op->cb.done(op->arg, v == 1    ? P2A_OK
                         : v == -1 ? P2A_ERR_NOT_FOUND
                         : v == -2 ? P2A_ERR_REFUSED
                                   : P2A_ERR_UNAVAILABLE);
}

/* prefix, id and suffix as one fresh string: a key (store_keys.h). */
static char *key_of(const char *prefix, const char *id, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(id) + strlen(suffix) + 1;
    char *k = xmalloc(n);
    snprintf(k, n, "%s%s%s", prefix, id, suffix);
    return k;
}

#define pat_key(jti) key_of(STORE_KEY_PAT, (jti), "")
/* the user's record (store.h): a PAT or a listing needs it */
#define user_record_key(user) key_of(STORE_KEY_USER, (user), "")
#define user_key(user) key_of(STORE_KEY_USER, (user), ":pats")

#define CREATE_ARGS 17 /* 6 keys, 11 arguments */

/* The arguments of create_lua for r within the limits given (0: none); free with
 * create_args_free(). */
struct create_args {
    char created[24], expires[24], created_ms[24], drop_at[24], deadline[24], cap[24], hourly[24];
    char *keys[6];
    const char *argv[CREATE_ARGS];
};

static void create_args_fill(struct create_args *a, struct store *st, const struct pat_record *r,
                             int max_active, int per_hour)
{
    snprintf(a->deadline, sizeof(a->deadline), "%lld", store_write_deadline_ms(st));
    snprintf(a->created, sizeof(a->created), "%lld", (long long)r->created_at);
    snprintf(a->expires, sizeof(a->expires), "%lld", (long long)r->expires_at);
    snprintf(a->created_ms, sizeof(a->created_ms), "%lld", (long long)r->created_ms);
    snprintf(a->drop_at, sizeof(a->drop_at), "%lld", (long long)(r->expires_at + RECORD_GRACE_S));
    snprintf(a->cap, sizeof(a->cap), "%d", max_active);
    snprintf(a->hourly, sizeof(a->hourly), "%d", per_hour);
    a->keys[0] = pat_key(r->jti);
    a->keys[1] = user_key(r->user_id);
    a->keys[2] = user_record_key(r->user_id);
    a->keys[3] = key_of(STORE_KEY_USER, r->user_id, ":live");
    a->keys[4] = key_of(STORE_KEY_USER, r->user_id, ":made");
    a->keys[5] = key_of(STORE_KEY_REVOKED, "", "");
    const char *argv[] = {a->keys[0], a->keys[1], a->keys[2],    a->keys[3], a->keys[4],
                          a->keys[5], r->jti,     r->user_id,    r->name,    r->scope,
                          a->created, a->expires, a->created_ms, a->drop_at, a->deadline,
                          a->cap,     a->hourly};
    memcpy(a->argv, argv, sizeof(argv));
}

static void create_args_free(struct create_args *a)
{
    for (size_t i = 0; i < 6; i++)
        free(a->keys[i]);
}

void store_pat_create(struct store *st, const struct pat_record *r, store_done_cb cb, void *arg)
{
    struct create_args a = {0};
    create_args_fill(&a, st, r, 0, 0);
    const char *argv[3 + CREATE_ARGS] = {"EVAL", create_lua, "6"};
    memcpy(argv + 3, a.argv, CREATE_ARGS * sizeof(argv[0]));
    struct op *op = store_op_new(written_reply, arg);
    op->cb.done = cb;
    store_send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
    create_args_free(&a);
}

void store_pat_create_capped(struct store *st, const struct pat_record *r, int max_active,
                             int per_hour, store_eval_cb cb, void *arg)
{
    struct create_args a = {0};
    create_args_fill(&a, st, r, max_active, per_hour);
    store_eval(st, create_lua, 6, a.argv, CREATE_ARGS, cb, arg);
    create_args_free(&a);
}

/* Returns {-1} when absent (or another user's), {1, revoked_at, 0, exp} when already revoked,
 * {0, revoked_at, seq, exp} when revoked now. */
static const char revoke_lua[] =
    STORE_LUA_REVOKE "if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end\n"
                     "if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'user_id') ~= ARGV[2] then\n"
                     "  return {-1}\n"
                     "end\n"
                     "local was = tonumber(redis.call('HGET', KEYS[1], 'revoked_at') or '0')\n"
                     "local exp = redis.call('HGET', KEYS[1], 'expires_at')\n"
                     "local user = redis.call('HGET', KEYS[1], 'user_id') or ''\n"
                     "if was ~= 0 then return {1, was, 0, tonumber(exp), user} end\n"
                     "redis.call('HSET', KEYS[1], 'revoked_at', ARGV[3])\n"
                     "local seq = revoke(ARGV[1], exp, ARGV[4]) or 0\n"
                     "return {0, tonumber(ARGV[3]), seq, tonumber(exp), user}\n";

static void revoke_reply(struct op *op, redisReply *r)
{
    if (!store_reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        op->cb.revoke(op->arg, P2A_ERR_UNAVAILABLE, false, 0, 0, "");
        return;
    }
    int64_t code = store_reply_int(r->element[0]);
    if (code < 0 || r->elements < 4) {
        op->cb.revoke(op->arg, P2A_ERR_NOT_FOUND, false, 0, 0, "");
        return;
    }
    const redisReply *u = r->elements >= 5 ? r->element[4] : NULL;
    op->cb.revoke(op->arg, P2A_OK, code == 1, store_reply_int(r->element[1]),
                  store_reply_int(r->element[3]),
                  u != NULL && u->type == REDIS_REPLY_STRING ? u->str : "");
}

void store_pat_revoke(struct store *st, const char *jti, const char *user_id, int64_t now_ms,
                      store_revoke_cb cb, void *arg)
{
    char nows[24], now_mss[24];
    snprintf(nows, sizeof(nows), "%lld", (long long)(now_ms / 1000));
    snprintf(now_mss, sizeof(now_mss), "%lld", (long long)now_ms);
    char *k1 = pat_key(jti);
    const char *argv[] = {"EVAL",           revoke_lua,       "4", k1,      STORE_KEY_REVOKED,
                          STORE_KEY_REVSEQ, STORE_KEY_REVLOG, jti, user_id, nows,
                          now_mss};
    /* acknowledged once replicas have it: a failover must not forget a revocation */
    struct op *op = store_op_new(revoke_reply, arg);
    op->cb.revoke = cb;
    store_send_durable(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
    free(k1);
}

/* ListTokens in two steps, so that the script declares every key it reads: the index's
 * jtis (newest first), then one script over the index and those records. Flat reply: 8
 * fields per token. Index entries whose record has gone (30 days after expiry) are dropped
 * on the way. KEYS: the index, then the records; ARGV: include revoked, limit, and the
 * length of the records' key prefix (the jti follows it). */
static const char list_lua[] =
    "local out = {}\n"
    "local skip = tonumber(ARGV[3])\n"
    "for i = 2, #KEYS do\n"
    "  local jti = string.sub(KEYS[i], skip + 1)\n"
    "  local h = redis.call('HMGET', KEYS[i], 'user_id', 'name', 'scope',"
    " 'created_at', 'expires_at', 'last_used_at', 'revoked_at')\n"
    "  if not h[1] then\n"
    "    redis.call('ZREM', KEYS[1], jti)\n"
    "  elseif ARGV[1] == '1' or h[7] == '0' then\n"
    "    out[#out + 1] = jti\n"
    "    for j = 1, 7 do out[#out + 1] = h[j] end\n"
    "    if #out >= tonumber(ARGV[2]) * 8 then break end\n"
    "  end\n"
    "end\n"
    "return out\n";

#define LIST_INDEX_MAX 5000 /* index entries read per listing */

static const char *reply_str(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "";
}

static void list_reply(struct op *op, redisReply *r)
{
    if (!store_reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements % 8 != 0) {
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
        v[i].created_at = store_reply_int(e[4]);
        v[i].expires_at = store_reply_int(e[5]);
        v[i].last_used_at = store_reply_int(e[6]);
        v[i].revoked_at = store_reply_int(e[7]);
    }
    op->cb.list(op->arg, P2A_OK, v, n);
    free(v);
}

/* The index's jtis came: the records, in one script. */
static void list_index_reply(struct op *op, redisReply *r)
{
    if (!store_reply_ok(r) || r->type != REDIS_REPLY_ARRAY) {
        op->cb.list(op->arg, P2A_ERR_UNAVAILABLE, NULL, 0);
        return;
    }
    if (r->elements == 1 && strcmp(reply_str(r->element[0]), "-1") == 0) {
        op->cb.list(op->arg, P2A_ERR_NOT_FOUND, NULL, 0); /* no such user */
        return;
    }
    const char *index_key = op->ctx;
    size_t n = r->elements, argc = 4 + n + 3;
    const char **argv = xcalloc(argc, sizeof(*argv));
    char **keys = xcalloc(n + 1, sizeof(*keys));
    char nkeys[24], limit[16], skip[16];
    snprintf(nkeys, sizeof(nkeys), "%zu", n + 1);
    snprintf(limit, sizeof(limit), "%d", STORE_LIST_MAX);
    snprintf(skip, sizeof(skip), "%zu", sizeof(STORE_KEY_PAT) - 1);
    argv[0] = "EVAL";
    argv[1] = list_lua;
    argv[2] = nkeys;
    argv[3] = index_key;
    for (size_t i = 0; i < n; i++) {
        keys[i] = pat_key(reply_str(r->element[i]));
        argv[4 + i] = keys[i];
    }
    argv[4 + n] = op->flag ? "1" : "0";
    argv[5 + n] = limit;
    argv[6 + n] = skip;
    struct op *next = store_op_new(list_reply, op->arg);
    next->cb.list = op->cb.list;
    store_send_op(op->st, next, (int)argc, argv, NULL);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(argv);
}

void store_pat_list(struct store *st, const char *user_id, bool include_revoked, store_list_cb cb,
                    void *arg)
{
    static const char index_lua[] =
        "if redis.call('EXISTS', KEYS[1]) == 0 then return {'-1'} end\n" /* a jti never is */
        "return redis.call('ZREVRANGE', KEYS[2], 0, ARGV[1])\n";
    char *k = user_key(user_id), *rec = user_record_key(user_id), upto[16];
    snprintf(upto, sizeof(upto), "%d", LIST_INDEX_MAX - 1);
    const char *argv[] = {"EVAL", index_lua, "2", rec, k, upto};
    struct op *op = store_op_new(list_index_reply, arg);
    op->cb.list = cb;
    op->flag = include_revoked;
    op->ctx = k; /* freed with op */
    store_send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
    free(rec);
}

/* ---- revocations -------------------------------------------------------------------------- */

static const char load_lua[] =
    "return {redis.call('GET', KEYS[2]) or '0', redis.call('ZRANGEBYSCORE', KEYS[1],"
    " '(' .. ARGV[1], '+inf', 'WITHSCORES')}\n";

static void revocations_reply(struct op *op, redisReply *r)
{
    if (!store_reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements % 2 != 0) {
        op->cb.revocations(op->arg, P2A_ERR_UNAVAILABLE, NULL, 0, 0);
        return;
    }
    uint64_t seq = (uint64_t)store_reply_int(r->element[0]);
    redisReply *set = r->element[1];
    size_t n = set->elements / 2;
    struct revocation *v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].jti = reply_str(set->element[2 * i]);
        v[i].exp = store_reply_int(set->element[2 * i + 1]);
    }
    op->cb.revocations(op->arg, P2A_OK, v, n, seq);
    free(v);
}

static void load_after_check(struct op *op, redisReply *r)
{
    if (!store_reply_ok(r) || r->type != REDIS_REPLY_INTEGER) {
        op->cb.revocations(op->arg, P2A_ERR_UNAVAILABLE, NULL, 0, 0);
        return;
    }
    if (r->integer != 0) { /* fail closed: this layout's revoked set would look empty */
        log_error("store.legacy_layout",
                  "Redis holds keys of the layout before hash tags (" STORE_KEY_LEGACY_REVSEQ
                  "): run scripts/migrate-redis-keys.sh against it; not serving until then");
        op->cb.revocations(op->arg, P2A_ERR_UNAVAILABLE, NULL, 0, 0);
        return;
    }
    char nows[24];
    snprintf(nows, sizeof(nows), "%lld", (long long)op->num);
    const char *argv[] = {"EVAL", load_lua, "2", STORE_KEY_REVOKED, STORE_KEY_REVSEQ, nows};
    struct op *load = store_op_new(revocations_reply, op->arg);
    load->cb.revocations = op->cb.revocations;
    store_send_op(op->st, load, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
}

/* A full load first makes sure Redis is not in the layout before hash tags (a Redis that an
 * older version wrote, not yet migrated), then reads the set and the sequence number. */
void store_revocations_load(struct store *st, int64_t now, store_revocations_cb cb, void *arg)
{
    const char *argv[] = {"EXISTS", STORE_KEY_LEGACY_REVSEQ};
    struct op *op = store_op_new(load_after_check, arg);
    op->cb.revocations = cb;
    op->num = now;
    store_send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
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
    if (!store_reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements % 3 != 0) {
        op->cb.revocations(op->arg, P2A_ERR_UNAVAILABLE, NULL, 0, 0);
        return;
    }
    uint64_t seq = (uint64_t)store_reply_int(r->element[0]);
    redisReply *rows = r->element[1];
    size_t n = rows->elements / 3;
    struct revocation *v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].jti = reply_str(rows->element[3 * i]);
        v[i].exp = store_reply_int(rows->element[3 * i + 1]);
        v[i].seq = (uint64_t)store_reply_int(rows->element[3 * i + 2]);
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
    const char *argv[] = {"EVAL",           since_lua,         "3",    STORE_KEY_REVLOG,
                          STORE_KEY_REVSEQ, STORE_KEY_REVOKED, afters, limits};
    struct op *op = store_op_new(since_reply, arg);
    op->cb.revocations = cb;
    store_send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
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
    if (!store_reply_ok(r) || r->type != REDIS_REPLY_INTEGER) {
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
    struct op *op = store_op_new(purge_reply, arg);
    op->cb.revocations = cb;
    store_send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
}

/* ---- last used ----------------------------------------------------------------------------- */

static const char last_used_lua[] = "for i, k in ipairs(KEYS) do\n"
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
    struct op *op = store_op_new(done_reply, arg);
    op->cb.done = cb;
    store_send_op(st, op, (int)argc, argv, NULL);
    for (size_t i = 0; i < 2 * n; i++)
        free(owned[i]);
    free(owned);
    free(argv);
}
