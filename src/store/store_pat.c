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
#include "store_lua.h"
#include "store_script.h"
#include "xalloc.h"

#define RECORD_GRACE_S (30LL * 86400) /* a PAT record outlives its token by this */

/* ---- PAT records --------------------------------------------------------------------------- */

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

/* The arguments of store_lua_pat_create for r within the limits given (0: none); free with
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
    const char *argv[3 + CREATE_ARGS] = {"EVAL", store_lua_pat_create, "6"};
    memcpy(argv + 3, a.argv, CREATE_ARGS * sizeof(argv[0]));
    struct op *op = store_op_new(written_reply, arg);
    op->cb.done = cb;
    store_send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
    create_args_free(&a);
}

void store_pat_create_capped(struct store *st, const struct pat_record *r, int max_active,
                             int per_hour, store_status_cb cb, void *arg)
{
    struct create_args a = {0};
    create_args_fill(&a, st, r, max_active, per_hour);
    store_eval(st, store_lua_pat_create, 6, a.argv, CREATE_ARGS, STATUS(cb, arg));
    create_args_free(&a);
}

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
    const char *argv[] = {"EVAL",           store_lua_pat_revoke, "4", k1,      STORE_KEY_REVOKED,
                          STORE_KEY_REVSEQ, STORE_KEY_REVLOG,     jti, user_id, nows,
                          now_mss};
    /* acknowledged once replicas have it: a failover must not forget a revocation */
    struct op *op = store_op_new(revoke_reply, arg);
    op->cb.revoke = cb;
    store_send_durable(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
    free(k1);
}

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
    argv[1] = store_lua_pat_list;
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
    char *k = user_key(user_id), *rec = user_record_key(user_id), upto[16];
    snprintf(upto, sizeof(upto), "%d", LIST_INDEX_MAX - 1);
    const char *argv[] = {"EVAL", store_lua_pat_index, "2", rec, k, upto};
    struct op *op = store_op_new(list_index_reply, arg);
    op->cb.list = cb;
    op->flag = include_revoked;
    op->ctx = k; /* freed with op */
    store_send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
    free(rec);
}

/* ---- revocations -------------------------------------------------------------------------- */

/* {seq, rows}: rows of stride fields each, jti then exp, and with a stride of 3 the entry's
 * sequence number (revocations_since.lua): the full load's and the catching up's one shape. */
static void revocations_rows(struct op *op, redisReply *r, size_t stride)
{
    if (!store_reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements % stride != 0) {
        op->cb.revocations(op->arg, P2A_ERR_UNAVAILABLE, NULL, 0, 0);
        return;
    }
    uint64_t seq = (uint64_t)store_reply_int(r->element[0]);
    redisReply *rows = r->element[1];
    size_t n = rows->elements / stride;
    struct revocation *v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        redisReply **e = rows->element + stride * i;
        v[i].jti = reply_str(e[0]);
        v[i].exp = store_reply_int(e[1]);
        v[i].seq = stride > 2 ? (uint64_t)store_reply_int(e[2]) : 0;
    }
    op->cb.revocations(op->arg, P2A_OK, v, n, seq);
    free(v);
}

static void revocations_reply(struct op *op, redisReply *r)
{
    revocations_rows(op, r, 2);
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
    const char *argv[] = {
        "EVAL", store_lua_revocations_load, "2", STORE_KEY_REVOKED, STORE_KEY_REVSEQ, nows};
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

static void since_reply(struct op *op, redisReply *r)
{
    revocations_rows(op, r, 3);
}

void store_revocations_since(struct store *st, uint64_t after, size_t limit,
                             store_revocations_cb cb, void *arg)
{
    char afters[24], limits[24];
    snprintf(afters, sizeof(afters), "%llu", (unsigned long long)after);
    snprintf(limits, sizeof(limits), "%zu", limit);
    const char *argv[] = {"EVAL",           store_lua_revocations_since, "3",    STORE_KEY_REVLOG,
                          STORE_KEY_REVSEQ, STORE_KEY_REVOKED,           afters, limits};
    struct op *op = store_op_new(since_reply, arg);
    op->cb.revocations = cb;
    store_send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
}

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
    const char *argv[] = {
        "EVAL", store_lua_revocations_purge, "2", STORE_KEY_REVOKED, STORE_KEY_REVLOG, nows};
    struct op *op = store_op_new(purge_reply, arg);
    op->cb.revocations = cb;
    store_send_op(st, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
}

/* ---- last used ----------------------------------------------------------------------------- */

void store_last_used(struct store *st, const char *const *jtis, const int64_t *ts, size_t n,
                     store_done_cb cb, void *arg)
{
    size_t argc = 3 + 2 * n;
    const char **argv = xcalloc(argc, sizeof(*argv));
    char **owned = xcalloc(2 * n + 1, sizeof(*owned));
    char nkeys[24];
    snprintf(nkeys, sizeof(nkeys), "%zu", n);
    argv[0] = "EVAL";
    argv[1] = store_lua_last_used;
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
