/* oauth_store.c -- OAuth state in Redis as Lua scripts (see oauth_store.h). */
#include "oauth_store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"
#include "clients.h"
#include "oauth.h"
#include "store_keys.h"
#include "validate.h"
#include "xalloc.h"

/* The longest argument eval_args() formats: a grant's families (grant:<user>:<id>:fams). */
#define ARG_MAX (sizeof(STORE_KEY_GRANT "::fams") + VALIDATE_USER_ID_MAX + OAUTH_HEX_LEN)
#define ARGS_MAX 20
#define GRANT_FIELDS 7 /* of each grant in a listing: its id and six fields */
/* members a grant script takes at once, within store_eval()'s 64 arguments (and
 * OAUTH_GRANTS_MAX for a listing: a key and an id each) */
#define GRANT_REVOKE_BATCH 18 /* families revoked a batch: two keys and an id each */

/* One argument of a script: a string, a number, or a key: a prefix (STORE_KEY_*), an id and
 * a suffix. Ids are bounded by their callers' checks, well within ARG_MAX. */
struct arg {
    enum { A_STR, A_NUM, A_KEY } kind;
    const char *prefix, *s, *suffix;
    int64_t num;
};
/* clang-format off */
#define STR(x) {A_STR, NULL, (x), NULL, 0}
#define NUM(x) {A_NUM, NULL, NULL, NULL, (x)}
#define KEY(p, id) {A_KEY, (p), (id), "", 0}
#define KEYX(p, id, sfx) {A_KEY, (p), (id), (sfx), 0}
/* an account, by username: its tag is the username (store_keys.h) */
#define ACCOUNT(u) KEYX(STORE_KEY_ACCOUNT, (u), "}")
/* a family and the sorted set of its access tokens */
#define FAMILY(fid) KEY(STORE_KEY_FAMILY, (fid)), KEYX(STORE_KEY_FAMILY, (fid), ":at")
/* a grant (a person's approval of a client, by grant_id()) and the set of its families */
#define GRANT(gid) KEY(STORE_KEY_GRANT, (gid)), KEYX(STORE_KEY_GRANT, (gid), ":fams")
/* the three keys STORE_LUA_REVOKE uses, last in KEYS */
#define REVOCATION KEY(STORE_KEY_REVOKED, ""), KEY(STORE_KEY_REVSEQ, ""), KEY(STORE_KEY_REVLOG, "")
/* clang-format on */

static void eval_args(struct store *st, const char *lua, int nkeys, const struct arg *a, size_t n,
                      bool durable, store_eval_cb cb, void *arg)
{
    assert(n <= ARGS_MAX);
    char text[ARGS_MAX][ARG_MAX];
    const char *args[ARGS_MAX];
    for (size_t i = 0; i < n && i < ARGS_MAX; i++) {
        args[i] = text[i];
        if (a[i].kind == A_STR)
            args[i] = a[i].s;
        else if (a[i].kind == A_NUM)
            snprintf(text[i], ARG_MAX, "%lld", (long long)a[i].num);
        else
            snprintf(text[i], ARG_MAX, "%s%s%s", a[i].prefix, a[i].s, a[i].suffix);
    }
    (durable ? store_eval_durable : store_eval)(st, lua, nkeys, args, n < ARGS_MAX ? n : ARGS_MAX,
                                                cb, arg);
}

/* Runs lua with the arguments listed (STR, NUM, KEY), the first nkeys its KEYS; REVOKING for a
 * script that revokes (acknowledged once the replicas have it: store_eval_durable). */
#define ARGS(...)                                                                                  \
    (const struct arg[]){__VA_ARGS__},                                                             \
        sizeof((const struct arg[]){__VA_ARGS__}) / sizeof(struct arg)
#define EVAL(st, lua, nkeys, cb, arg, ...)                                                         \
    eval_args(st, lua, nkeys, ARGS(__VA_ARGS__), false, cb, arg)
#define REVOKING(st, lua, nkeys, cb, arg, ...)                                                     \
    eval_args(st, lua, nkeys, ARGS(__VA_ARGS__), true, cb, arg)

/* "<user_id>:<digest of client_id>": a grant's key after STORE_KEY_GRANT (a client id may be
 * a 1 KiB URL; the digest is also the grant_id the RPCs show). */
static void grant_id(const char *user_id, const char *client_id, char out[ARG_MAX])
{
    char digest[OAUTH_HEX_LEN + 1];
    oauth_digest_hex(client_id, strlen(client_id), digest);
    snprintf(out, ARG_MAX, "%s:%s", user_id, digest);
}

/* A user's generation (Lua, the user's record at key uk): disabling a user moves it on, and
 * a family records the one it was created in, so that a family from before a disable is over
 * even once the user is enabled again (README: tokens of before stay revoked). A family or
 * user without one (written before generations) is in generation 0; a user disabled before
 * them is moved to 1 when enabled. */
#define LUA_USER_GEN "local function user_gen(uk) return redis.call('HGET', uk, 'gen') or '0' end\n"
/* Whether the family at key fk may no longer be refreshed for its user (at key uk): the user
 * is disabled, or was disabled after the family was created. */
#define LUA_FAMILY_STALE                                                                           \
    LUA_USER_GEN                                                                                   \
    "local function family_stale(fk, uk)\n"                                                        \
    "  if " STORE_LUA_USER_DISABLED(                                                               \
        "uk") " then return true end\n"                                                            \
              "  return (redis.call('HGET', fk, 'gen') or '0') ~= user_gen(uk)\n"                  \
              "end\n"

/* Revokes the family at key fk (its access tokens at fat) and its unexpired access tokens;
 * returns {jti, exp, ...} revoked now. */
#define LUA_REVOKE_FAMILY                                                                          \
    STORE_LUA_REVOKE                                                                               \
    "local function revoke_family(fk, fat, ms)\n"                                                  \
    "  redis.call('HSET', fk, 'revoked', '1')\n"                                                   \
    "  if redis.call('TTL', fk) < 0 then redis.call('EXPIRE', fk, 2592000) end\n"                  \
    "  local now = math.floor(tonumber(ms) / 1000)\n"                                              \
    "  local ats = redis.call('ZRANGEBYSCORE', fat, '(' .. now, '+inf', 'WITHSCORES')\n"           \
    "  local out = {}\n"                                                                           \
    "  for i = 1, #ats, 2 do\n"                                                                    \
    "    if revoke(ats[i], ats[i + 1], ms) and #out < 60 then\n"                                   \
    "      out[#out + 1] = ats[i]; out[#out + 1] = ats[i + 1]\n"                                   \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return out\n"                                                                               \
    "end\n"

void oauth_store_ignore(void *arg, p2a_err err, const char *const *v, const size_t *lens, size_t n)
{
    (void)arg, (void)err, (void)v, (void)lens, (void)n;
}

void oauth_store_client_put(struct store *st, const char *client_id, const char *record, int ttl_s,
                            store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
        "redis.call('SET', KEYS[1], ARGV[1])\n"
        "if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end\n"
        "return 1\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_CLIENT, client_id), STR(record), NUM(ttl_s));
}

void oauth_store_client_get(struct store *st, const char *client_id, store_eval_cb cb, void *arg)
{
    static const char lua[] = "return redis.call('GET', KEYS[1]) or ''\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_CLIENT, client_id));
}

void oauth_store_client_touch(struct store *st, const char *client_id, int idle_s, store_eval_cb cb,
                              void *arg)
{
    static const char lua[] =
        "if redis.call('TTL', KEYS[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
        "return 1\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_CLIENT, client_id), NUM(idle_s));
}

void oauth_store_user_create(struct store *st, const char *username, const char *user_id,
                             const char *hash, int64_t now, store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
        "redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'hash', ARGV[2], 'created_at', ARGV[3])\n"
        "return 1\n";
    EVAL(st, lua, 1, cb, arg, ACCOUNT(username), STR(user_id), STR(hash), NUM(now));
}

/* The counters of sign-in attempts: one account from one address (a hard limit per
 * window), and one account from anywhere (failures beyond a number space attempts out):
 * the ids to follow STORE_KEY_RATE, tagged by the username as the account is. */
static void login_keys(const char *username, const char *addr, char pair[ARG_MAX],
                       char acct[ARG_MAX])
{
    snprintf(pair, ARG_MAX, "%s}:pair:%s", username, addr);
    snprintf(acct, ARG_MAX, "%s}:account", username);
}

/* "<username>}:devices": the browsers the account signed in from (hash: digest of the
 * device cookie -> failures since), at most OAUTH_DEVICES_MAX */
static void device_key(const char *username, char out[ARG_MAX])
{
    snprintf(out, ARG_MAX, "%s}:devices", username);
}

static const char *device_or_none(const char *device)
{
    return device != NULL && device[0] ? device : "-";
}

void oauth_store_login_reserve(struct store *st, const char *username, const char *addr,
                               const char *device, const struct oauth_login_limits *lim,
                               int64_t now_ms, store_eval_cb cb, void *arg)
{
    /* A browser this account signed in from (KEYS[4]) has its own failures and is spared
     * the account's spacing; any other attempt counts at the address (KEYS[2]) even when
     * refused, and a failure at the account (KEYS[3]). */
    static const char lua[] =
        "local now = tonumber(ARGV[3])\n"
        "local dn = redis.call('HGET', KEYS[4], ARGV[7])\n"
        "if dn and tonumber(dn) < tonumber(ARGV[6]) then\n"
        "  redis.call('HINCRBY', KEYS[4], ARGV[7], 1)\n"
        "  local h = redis.call('HMGET', KEYS[1], 'user_id', 'hash')\n"
        "  return {0, h[1] or '', h[2] or '', 0, 1}\n"
        "end\n"
        "local function count_at_address()\n"
        "  redis.call('INCR', KEYS[2])\n"
        "  if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end\n"
        "end\n"
        "local pair = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
        "if pair >= tonumber(ARGV[1]) then\n"
        "  return {1, '', '', math.max(redis.call('TTL', KEYS[2]), 1), 0}\n"
        "end\n"
        "local a = redis.call('HMGET', KEYS[3], 'n', 'next')\n"
        "local n = tonumber(a[1] or '0')\n"
        "local nxt = tonumber(a[2] or '0')\n"
        "if now < nxt then\n"
        "  count_at_address()\n" /* a refused attempt costs its address */
        "  return {2, '', '', math.ceil((nxt - now) / 1000), 0}\n"
        "end\n"
        "count_at_address()\n"
        "n = n + 1\n"
        "local free = tonumber(ARGV[4])\n"
        "if n > free then\n"
        "  local delay = math.min(2 ^ math.min(n - free - 1, 30), tonumber(ARGV[5]))\n"
        "  nxt = now + delay * 1000\n"
        "end\n"
        "redis.call('HSET', KEYS[3], 'n', n, 'next', nxt)\n"
        "redis.call('EXPIRE', KEYS[3], ARGV[2])\n"
        "local h = redis.call('HMGET', KEYS[1], 'user_id', 'hash')\n"
        "return {0, h[1] or '', h[2] or '', 0, 0}\n";
    char pair[ARG_MAX], acct[ARG_MAX], dev[ARG_MAX];
    login_keys(username, addr, pair, acct);
    device_key(username, dev);
    EVAL(st, lua, 4, cb, arg, ACCOUNT(username), KEY(STORE_KEY_RATE, pair),
         KEY(STORE_KEY_RATE, acct), KEY(STORE_KEY_RATE, dev), NUM(lim->per_pair),
         NUM(OAUTH_LOGIN_WINDOW_S), NUM(now_ms), NUM(lim->throttle_after),
         NUM(OAUTH_LOGIN_MAX_DELAY_S), NUM(lim->device_failures), STR(device_or_none(device)));
}

void oauth_store_session_create(struct store *st, const char *sid_digest, const char *user_id,
                                const char *username, const char *addr, const char *device,
                                int64_t auth_time, int ttl_s, store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'username', ARGV[2], 'auth_time',"
        " ARGV[3])\n"
        "redis.call('EXPIRE', KEYS[1], ARGV[4])\n"
        "return 1\n";
    /* the session and the account's counters live in different slots: two scripts, sent
     * together; a release that fails leaves counters that expire with their window. The
     * browser is remembered for the account (its failures start again). */
    static const char release[] =
        "if ARGV[2] == '1' then redis.call('DEL', KEYS[1], KEYS[2]) end\n"
        "if ARGV[1] ~= '0' then\n"
        "  if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 0 and"
        " redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[4]) then\n"
        "    redis.call('HDEL', KEYS[3], redis.call('HRANDFIELD', KEYS[3]))\n"
        "  end\n"
        "  redis.call('HSET', KEYS[3], ARGV[3], 0)\n"
        "  redis.call('EXPIRE', KEYS[3], ARGV[1])\n"
        "end\n"
        "return 1\n";
    char pair[ARG_MAX], acct[ARG_MAX], dev[ARG_MAX];
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_SESSION, sid_digest), STR(user_id), STR(username),
         NUM(auth_time), NUM(ttl_s));
    bool remember = device != NULL && device[0] != '\0';
    if (addr == NULL && !remember)
        return;
    login_keys(username, addr != NULL ? addr : "-", pair, acct);
    device_key(username, dev);
    EVAL(st, release, 3, oauth_store_ignore, NULL, KEY(STORE_KEY_RATE, pair),
         KEY(STORE_KEY_RATE, acct), KEY(STORE_KEY_RATE, dev),
         NUM(remember ? OAUTH_DEVICE_TTL_S : 0), STR(addr != NULL ? "1" : "0"),
         STR(device_or_none(device)), NUM(OAUTH_DEVICES_MAX));
}

void oauth_store_session_delete(struct store *st, const char *sid_digest, store_eval_cb cb,
                                void *arg)
{
    static const char lua[] = "local u = redis.call('HGET', KEYS[1], 'user_id') or ''\n"
                              "redis.call('DEL', KEYS[1])\nreturn {1, u}\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_SESSION, sid_digest));
}

void oauth_store_session_get(struct store *st, const char *sid_digest, store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "local h = redis.call('HMGET', KEYS[1], 'user_id', 'username', 'auth_time')\n"
        "if not h[1] then return {} end\n"
        "return h\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_SESSION, sid_digest));
}

void oauth_store_code_create(struct store *st, const char *code_digest, const char *binding,
                             store_eval_cb cb, void *arg)
{
    static const char lua[] = "redis.call('HSET', KEYS[1], 'b', ARGV[1], 'used', '0')\n"
                              "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
                              "return 1\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_CODE, code_digest), STR(binding),
         NUM(OAUTH_CODE_TTL_S));
}

void oauth_store_code_redeem(struct store *st, const char *code_digest, const char *fid,
                             store_eval_cb cb, void *arg)
{
    static const char lua[] = "local h = redis.call('HMGET', KEYS[1], 'b', 'used', 'fam')\n"
                              "if not h[1] then return {-1} end\n"
                              "if h[2] == '1' then return {1, h[3] or ''} end\n"
                              "redis.call('HSET', KEYS[1], 'used', '1', 'fam', ARGV[1])\n"
                              "return {0, h[1]}\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_CODE, code_digest), STR(fid));
}

void oauth_store_family_create(struct store *st, const char *fid, const char *client_id,
                               const char *user_id, const char *scope, const char *resource,
                               const char *rt_digest, const char *at_jti, int64_t at_exp, int ttl_s,
                               int64_t now_ms, store_eval_cb cb, void *arg)
{
    static const char lua[] = STORE_LUA_REVOKE LUA_USER_GEN
        "redis.call('ZADD', KEYS[2], ARGV[8], ARGV[7])\n"
        "redis.call('EXPIRE', KEYS[2], ARGV[9])\n"
        "local off = " STORE_LUA_USER_DISABLED(
            "KEYS[6]") "\n"
                       "if off or redis.call('HGET', KEYS[1], 'revoked') == '1' then\n"
                       "  revoke(ARGV[7], ARGV[8], ARGV[10])\n"
                       "  return off and -1 or 0\n"
                       "end\n"
                       "redis.call('HSET', KEYS[1], 'client_id', ARGV[1], 'user_id', ARGV[2], "
                       "'scope', ARGV[3],"
                       " 'resource', ARGV[4], 'cur', ARGV[5], 'prev', '', 'prev_at', '0', "
                       "'revoked', '0', 'gen', user_gen(KEYS[6]))\n"
                       "redis.call('EXPIRE', KEYS[1], ARGV[9])\n"
                       "redis.call('SET', KEYS[3], ARGV[6], 'EX', ARGV[9])\n"
                       "redis.call('SADD', KEYS[5], ARGV[6])\n"
                       "if redis.call('TTL', KEYS[5]) < tonumber(ARGV[9]) then\n"
                       "  redis.call('EXPIRE', KEYS[5], ARGV[9])\n"
                       "end\n"
                       "if redis.call('EXISTS', KEYS[4]) == 1 then\n"
                       "  redis.call('HSET', KEYS[4], 'last_used_at', "
                       "math.floor(tonumber(ARGV[10]) / 1000))\n"
                       "end\n"
                       "return 1\n";
    char gid[ARG_MAX];
    grant_id(user_id, client_id, gid);
    EVAL(st, lua, 9, cb, arg, FAMILY(fid), KEY(STORE_KEY_REFRESH, rt_digest), GRANT(gid),
         KEY(STORE_KEY_USER, user_id), REVOCATION, STR(client_id), STR(user_id), STR(scope),
         STR(resource), STR(rt_digest), STR(fid), STR(at_jti), NUM(at_exp), NUM(ttl_s),
         NUM(now_ms));
}

/* ---- what a refresh token leads to: two steps ------------------------------------------- */

/* A script about a refresh token's family must name the family's keys, and only Redis knows
 * which family a token belongs to: its id is read first (rt:<digest> -> fid, never changed
 * once written), then the script runs with every key declared and checks the token still
 * names that family. */
struct fam_job {
    struct store *st;
    store_eval_cb cb;
    void *arg;
    void (*run)(struct fam_job *j, const char *fid);
    const char *unknown; /* the reply for a token Redis does not know ("-1"), NULL: {} */
    bool with_user;      /* run needs the family's user (a step between: user_id) */
    char *client_id, *new_digest, *scope, *resource, *user_id;
    char rt_digest[OAUTH_HEX_LEN + 1];
    char fid[OAUTH_HEX_LEN + 1];
    int64_t now_ms;
    int grace_s, ttl_s;
};

static char *dup_or_empty(const char *s)
{
    return xstrdup(s != NULL ? s : "");
}

static void fam_job_free(struct fam_job *j)
{
    free(j->client_id);
    free(j->new_digest);
    free(j->scope);
    free(j->resource);
    free(j->user_id);
    free(j);
}

static void fam_found(void *arg, p2a_err err, const char *const *v, const size_t *lens, size_t n);

/* The step between for a script that names the family's user's record: the family's user_id
 * (the script checks the family names that user, so a family that changed in between is
 * unknown there). */
static void fam_user_found(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                           size_t n)
{
    (void)lens;
    struct fam_job *j = arg;
    if (err == P2A_OK && n >= 1 && v[0][0] != '\0' && strlen(v[0]) <= VALIDATE_USER_ID_MAX) {
        j->user_id = xstrdup(v[0]);
        j->run(j, j->fid);
        fam_job_free(j);
        return;
    }
    j->with_user = false;
    j->run = NULL;
    fam_found(j, err, NULL, NULL, 0); /* unknown, or the error */
}

static void fam_found(void *arg, p2a_err err, const char *const *v, const size_t *lens, size_t n)
{
    (void)lens;
    struct fam_job *j = arg;
    if (err != P2A_OK) {
        j->cb(j->arg, err, NULL, NULL, 0);
    } else if (n < 1 || v[0][0] == '\0' || strlen(v[0]) > OAUTH_HEX_LEN) {
        size_t len = j->unknown != NULL ? strlen(j->unknown) : 0;
        j->cb(j->arg, P2A_OK, j->unknown != NULL ? &j->unknown : NULL, &len,
              j->unknown != NULL ? 1 : 0);
    } else if (j->with_user) {
        static const char lua[] = "return redis.call('HGET', KEYS[1], 'user_id') or ''\n";
        snprintf(j->fid, sizeof(j->fid), "%s", v[0]);
        EVAL(j->st, lua, 1, fam_user_found, j, KEY(STORE_KEY_FAMILY, j->fid));
        return;
    } else {
        j->run(j, v[0]);
    }
    fam_job_free(j);
}

static struct fam_job *fam_job_new(struct store *st, const char *rt_digest, store_eval_cb cb,
                                   void *arg)
{
    struct fam_job *j = xcalloc(1, sizeof(*j));
    j->st = st;
    j->cb = cb;
    j->arg = arg;
    snprintf(j->rt_digest, sizeof(j->rt_digest), "%s", rt_digest);
    return j;
}

static void fam_lookup(struct fam_job *j)
{
    static const char lua[] = "return redis.call('GET', KEYS[1]) or ''\n";
    EVAL(j->st, lua, 1, fam_found, j, KEY(STORE_KEY_REFRESH, j->rt_digest));
}

/* ARGV[1] is the family the first step found: a token that names another (it cannot) or
 * none any more (it expired between the steps) is unknown. */
#define LUA_SAME_FAMILY(unknown)                                                                   \
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return " unknown " end\n"

static void refresh_run(struct fam_job *j, const char *fid)
{
    static const char lua[] = LUA_REVOKE_FAMILY LUA_SAME_FAMILY(
        "{-1}") "local fk, fat = KEYS[2], KEYS[3]\n"
                "local f = redis.call('HMGET', fk, 'client_id', 'user_id', 'scope', 'resource',"
                " 'cur', 'prev', 'prev_at', 'revoked')\n"
                "if not f[1] then return {-1} end\n"
                "if f[8] == '1' then return {-2} end\n"
                "if f[1] ~= ARGV[2] then return {-4} end\n"
                "local now = tonumber(ARGV[6])\n"
                "local d = ARGV[9]\n"
                "local grace = tonumber(ARGV[7]) * 1000\n"
                "local in_grace = d == f[6] and grace > 0 and now - tonumber(f[7]) <= grace\n"
                "local fresh = d == f[5] or in_grace\n"
                "if not fresh then\n"
                "  local out = revoke_family(fk, fat, ARGV[6])\n"
                "  table.insert(out, 1, -3)\n"
                "  return out\n"
                "end\n"
                "local function within(have, want)\n" /* lists, space-separated */
                "  local set = {}\n"
                "  for s in string.gmatch(have, '%S+') do set[s] = true end\n"
                "  for s in string.gmatch(want, '%S+') do\n"
                "    if not set[s] then return false end\n"
                "  end\n"
                "  return true\n"
                "end\n"
                "local scope, resources = f[3], f[4]\n"
                "if ARGV[4] ~= '' then\n"
                "  if not within(f[3], ARGV[4]) then return {-5} end\n"
                "  scope = ARGV[4]\n"
                "end\n"
                "if ARGV[5] ~= '' then\n"
                "  if not within(f[4], ARGV[5]) then return {-6} end\n"
                "  resources = ARGV[5]\n"
                "end\n"
                "if d == f[5] then\n"
                "  redis.call('HSET', fk, 'prev', f[5], 'prev_at', now)\n"
                "else\n" /* the grace is used up: the old token was exchanged once */
                "  redis.call('HSET', fk, 'prev', '')\n"
                "end\n"
                "redis.call('HSET', fk, 'cur', ARGV[3])\n"
                "redis.call('EXPIRE', fk, ARGV[8])\n"
                "redis.call('EXPIRE', fat, ARGV[8])\n"
                "redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[8])\n"
                "return {0, ARGV[1], f[2], scope, resources}\n";
    EVAL(j->st, lua, 7, j->cb, j->arg, KEY(STORE_KEY_REFRESH, j->rt_digest), FAMILY(fid),
         KEY(STORE_KEY_REFRESH, j->new_digest), REVOCATION, STR(fid), STR(j->client_id),
         STR(j->new_digest), STR(j->scope), STR(j->resource), NUM(j->now_ms), NUM(j->grace_s),
         NUM(j->ttl_s), STR(j->rt_digest));
}

void oauth_store_refresh(struct store *st, const char *rt_digest, const char *client_id,
                         const char *new_rt_digest, const char *scope, const char *resource,
                         int64_t now_ms, int grace_s, int ttl_s, store_eval_cb cb, void *arg)
{
    struct fam_job *j = fam_job_new(st, rt_digest, cb, arg);
    j->run = refresh_run;
    j->unknown = "-1";
    j->client_id = dup_or_empty(client_id);
    j->new_digest = dup_or_empty(new_rt_digest);
    j->scope = dup_or_empty(scope);
    j->resource = dup_or_empty(resource);
    j->now_ms = now_ms;
    j->grace_s = grace_s;
    j->ttl_s = ttl_s;
    fam_lookup(j);
}

static void refresh_info_run(struct fam_job *j, const char *fid)
{
    static const char lua[] = LUA_FAMILY_STALE LUA_SAME_FAMILY(
        "{}") "local f = redis.call('HMGET', KEYS[2], 'client_id', 'user_id', 'scope', 'resource',"
              " 'cur', 'revoked')\n"
              "if not f[1] or f[6] == '1' or f[5] ~= ARGV[2] or f[2] ~= ARGV[3] then\n"
              "  return {}\n"
              "end\n"
              "if family_stale(KEYS[2], KEYS[3]) then return {} end\n"
              "return {f[1], f[2], f[3], f[4], redis.call('TTL', KEYS[1])}\n";
    EVAL(j->st, lua, 3, j->cb, j->arg, KEY(STORE_KEY_REFRESH, j->rt_digest),
         KEY(STORE_KEY_FAMILY, fid), KEY(STORE_KEY_USER, j->user_id), STR(fid), STR(j->rt_digest),
         STR(j->user_id));
}

void oauth_store_refresh_info(struct store *st, const char *rt_digest, store_eval_cb cb, void *arg)
{
    struct fam_job *j = fam_job_new(st, rt_digest, cb, arg);
    j->run = refresh_info_run;
    j->with_user = true;
    fam_lookup(j);
}

void oauth_store_family_add_at(struct store *st, const char *fid, const char *user_id,
                               const char *jti, int64_t exp, int64_t now_ms, store_eval_cb cb,
                               void *arg)
{
    /* a family of a user disabled since it was created ends here, with the token just made */
    static const char lua[] =
        LUA_REVOKE_FAMILY LUA_FAMILY_STALE "redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])\n"
                                           "if redis.call('HGET', KEYS[1], 'revoked') == '1' then\n"
                                           "  revoke(ARGV[1], ARGV[2], ARGV[3])\n"
                                           "  return 0\n"
                                           "end\n"
                                           "if family_stale(KEYS[1], KEYS[3]) then\n"
                                           "  revoke_family(KEYS[1], KEYS[2], ARGV[3])\n"
                                           "  return -1\n"
                                           "end\n"
                                           "return 1\n";
    EVAL(st, lua, 6, cb, arg, FAMILY(fid), KEY(STORE_KEY_USER, user_id), REVOCATION, STR(jti),
         NUM(exp), NUM(now_ms));
}

void oauth_store_user_disable(struct store *st, const char *user_id, bool disable,
                              const char *marker, int64_t now_ms, int64_t marker_exp,
                              store_eval_cb cb, void *arg)
{
    static const char lua[] = STORE_LUA_REVOKE
        "if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end\n"
        "if ARGV[1] == '0' then\n"
        "  if redis.call('HDEL', KEYS[1], 'disabled_at') == 1 then\n"
        "    redis.call('HSETNX', KEYS[1], 'gen', 1)\n" /* disabled before generations */
        "  end\n"
        "  return {0}\n"
        "end\n"
        "redis.call('HSET', KEYS[1], 'disabled_at', math.floor(tonumber(ARGV[3]) / 1000))\n"
        "redis.call('HINCRBY', KEYS[1], 'gen', 1)\n"
        "redis.call('DEL', KEYS[2])\n"
        "revoke(ARGV[2], ARGV[4], ARGV[3], true)\n"
        "return {0}\n";
    REVOKING(st, lua, 5, cb, arg, KEY(STORE_KEY_USER, user_id),
             KEYX(STORE_KEY_USER, user_id, ":live"), REVOCATION, NUM(disable ? 1 : 0), STR(marker),
             NUM(now_ms), NUM(marker_exp));
}

void oauth_store_user_get(struct store *st, const char *user_id, store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "if redis.call('EXISTS', KEYS[1]) == 0 then return {} end\n"
        "return redis.call('HMGET', KEYS[1], 'display_name', 'source', 'created_at',"
        " 'last_sign_in_at', 'disabled_at')\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_USER, user_id));
}

void oauth_store_family_revoke(struct store *st, const char *fid, int64_t now_ms, store_eval_cb cb,
                               void *arg)
{
    static const char lua[] = LUA_REVOKE_FAMILY "return revoke_family(KEYS[1], KEYS[2], ARGV[1])\n";
    REVOKING(st, lua, 5, cb, arg, FAMILY(fid), REVOCATION, NUM(now_ms));
}

static void refresh_revoke_run(struct fam_job *j, const char *fid)
{
    static const char lua[] = LUA_REVOKE_FAMILY LUA_SAME_FAMILY(
        "{}") "if redis.call('HGET', KEYS[2], 'client_id') ~= ARGV[2] then return {} end\n"
              "return revoke_family(KEYS[2], KEYS[3], ARGV[3])\n";
    REVOKING(j->st, lua, 6, j->cb, j->arg, KEY(STORE_KEY_REFRESH, j->rt_digest), FAMILY(fid),
             REVOCATION, STR(fid), STR(j->client_id), NUM(j->now_ms));
}

void oauth_store_refresh_revoke(struct store *st, const char *rt_digest, const char *client_id,
                                int64_t now_ms, store_eval_cb cb, void *arg)
{
    struct fam_job *j = fam_job_new(st, rt_digest, cb, arg);
    j->run = refresh_revoke_run;
    j->client_id = dup_or_empty(client_id);
    j->now_ms = now_ms;
    fam_lookup(j);
}

void oauth_store_jti_revoke(struct store *st, const char *jti, int64_t exp, int64_t now_ms,
                            store_eval_cb cb, void *arg)
{
    static const char lua[] =
        STORE_LUA_REVOKE "if revoke(ARGV[1], ARGV[2], ARGV[3]) then return 1 end\n"
                         "return 0\n";
    REVOKING(st, lua, 3, cb, arg, REVOCATION, STR(jti), NUM(exp), NUM(now_ms));
}

void oauth_store_assertion_once(struct store *st, const char *client_id, const char *jti,
                                int64_t exp, int skew_s, store_eval_cb cb, void *arg)
{
    /* kept while any replica may still take it: to exp plus the skew it allows past exp, on
     * a clock that may lag Redis's by the skew again, and a minute more */
    static const char lua[] =
        "local t = redis.call('TIME')\n"
        "local ttl = tonumber(ARGV[1]) + 2 * tonumber(ARGV[2]) - tonumber(t[1]) + 60\n"
        "if ttl < 1 then ttl = 1 end\n"
        "if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ttl) then return 1 end\n"
        "return 0\n";
    char both[OAUTH_MAX_CLIENT_ID + 160], digest[OAUTH_HEX_LEN + 1];
    int n = snprintf(both, sizeof(both), "%s\n%s", client_id, jti);
    oauth_digest_hex(both, (size_t)n < sizeof(both) ? (size_t)n : sizeof(both) - 1, digest);
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_ASSERTION, digest), NUM(exp), NUM(skew_s));
}

/* The rate limit script: KEYS[1] the address's counter, KEYS[2] everyone's; ARGV the two
 * limits, the window and OAUTH_LIMIT_FRESH. */
static const char limit_lua[] =
    "local one = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if one >= tonumber(ARGV[1]) then return {1, math.max(redis.call('TTL', KEYS[1]), 1)} end\n"
    "if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) and\n"
    "   one >= tonumber(ARGV[4]) then\n"
    "  return {2, math.max(redis.call('TTL', KEYS[2]), 1)}\n"
    "end\n"
    "for i = 1, 2 do\n"
    "  redis.call('INCR', KEYS[i])\n"
    "  if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[3]) end\n"
    "end\n"
    "return {0, 0}\n";

/* "<what>}:<addr>" and "<what>}:all": the counters' ids after STORE_KEY_RATE, tagged by what */
static void limit_ids(const char *what, const char *addr, char one[ARG_MAX], char all[ARG_MAX])
{
    snprintf(one, ARG_MAX, "%s}:%s", what, addr);
    snprintf(all, ARG_MAX, "%s}:all", what);
}

void oauth_store_limit_hit(struct store *st, const char *what, const char *addr, int per_addr,
                           int global, int window_s, store_eval_cb cb, void *arg)
{
    char one[ARG_MAX], all[ARG_MAX];
    limit_ids(what, addr, one, all);
    EVAL(st, limit_lua, 2, cb, arg, KEY(STORE_KEY_RATE, one), KEY(STORE_KEY_RATE, all),
         NUM(per_addr), NUM(global), NUM(window_s), NUM(OAUTH_LIMIT_FRESH));
}

void oauth_store_upstream_once(struct store *st, const char *state_digest, int ttl_s,
                               store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 1 end\n"
        "return 0\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_UPSTREAM, state_digest), NUM(ttl_s));
}

void oauth_store_user_put(struct store *st, const char *user_id, const char *display_name,
                          const char *source, int64_t now, bool signed_in, store_eval_cb cb,
                          void *arg)
{
    static const char lua[] =
        "local created = redis.call('HSETNX', KEYS[1], 'created_at', ARGV[3])\n"
        "if created == 1 then\n"
        "  redis.call('HSET', KEYS[1], 'source', ARGV[2], 'last_sign_in_at', 0)\n"
        "end\n"
        "redis.call('HSET', KEYS[1], 'display_name', ARGV[1])\n"
        "if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'last_sign_in_at', ARGV[3]) end\n"
        "return created\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_USER, user_id), STR(display_name), STR(source),
         NUM(now), STR(signed_in ? "1" : "0"));
}

/* ---- grants: remembered consent --------------------------------------------------------- */

void oauth_store_grant_get(struct store *st, const char *user_id, const char *client_id,
                           store_eval_cb cb, void *arg)
{
    static const char lua[] = "local g = redis.call('HMGET', KEYS[1], 'scope', 'resource')\n"
                              "return {g[1] or '', g[2] or '',"
                              " " STORE_LUA_USER_DISABLED("KEYS[2]") " and 1 or 0}\n";
    char gid[ARG_MAX];
    grant_id(user_id, client_id, gid);
    EVAL(st, lua, 2, cb, arg, KEY(STORE_KEY_GRANT, gid), KEY(STORE_KEY_USER, user_id));
}

void oauth_store_grant_approve(struct store *st, const char *user_id, const char *client_id,
                               const char *client_name, const char *scope, const char *resource,
                               int64_t now, int ttl_s, store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "local function union(a, b)\n" /* lists, space-separated, in order, no repeats */
        "  local seen, out = {}, {}\n"
        "  for s in string.gmatch((a or '') .. ' ' .. b, '%S+') do\n"
        "    if not seen[s] then seen[s] = true; out[#out + 1] = s end\n"
        "  end\n"
        "  return table.concat(out, ' ')\n"
        "end\n"
        "local h = redis.call('HMGET', KEYS[1], 'scope', 'resource', 'approved_at')\n"
        "redis.call('HSET', KEYS[1], 'client_id', ARGV[1], 'client_name', ARGV[2],"
        " 'scope', union(h[1], ARGV[3]), 'resource', union(h[2], ARGV[4]),"
        " 'approved_at', ARGV[5])\n"
        "if not h[3] then redis.call('HSET', KEYS[1], 'last_used_at', 0) end\n"
        "redis.call('EXPIRE', KEYS[1], ARGV[6])\n"
        "redis.call('SADD', KEYS[2], ARGV[7])\n"
        "if redis.call('TTL', KEYS[2]) < tonumber(ARGV[6]) then\n"
        "  redis.call('EXPIRE', KEYS[2], ARGV[6])\n"
        "end\n"
        "return 1\n";
    char gid[ARG_MAX], ukey[ARG_MAX];
    grant_id(user_id, client_id, gid);
    snprintf(ukey, sizeof(ukey), "%s:grants", user_id);
    EVAL(st, lua, 2, cb, arg, KEY(STORE_KEY_GRANT, gid), KEY(STORE_KEY_USER, ukey), STR(client_id),
         STR(client_name), STR(scope), STR(resource), NUM(now), NUM(ttl_s),
         STR(strrchr(gid, ':') + 1));
}

/* A script over keys only Redis can list (a user's grants, a grant's families): some of the
 * set's members first, then the script with a key per member declared. */
struct set_job {
    struct store *st;
    store_eval_cb cb;
    void *arg;
    char *user_id, *gid;
    int64_t now_ms;
    /* the next step: false when it has taken j over (it will read the set again) */
    bool (*run)(struct set_job *j, const char *const *v, size_t n);
};

static void set_job_free(struct set_job *j)
{
    free(j->user_id);
    free(j->gid);
    free(j);
}

static void set_members(void *arg, p2a_err err, const char *const *v, const size_t *lens, size_t n)
{
    (void)lens;
    struct set_job *j = arg;
    if (err != P2A_OK)
        j->cb(j->arg, err, NULL, NULL, 0);
    else if (!j->run(j, v, n))
        return;
    set_job_free(j);
}

static void set_read(struct set_job *j, const char *key, int count)
{
    static const char lua[] = "return redis.call('SRANDMEMBER', KEYS[1], ARGV[1])\n";
    EVAL(j->st, lua, 1, set_members, j, KEY(key, ""), NUM(count));
}

/* Flat reply: 7 fields a grant (grant_id client_id client_name scope resource approved_at
 * last_used_at); members whose grant has gone are dropped from the user's set. */
static bool grants_list_run(struct set_job *j, const char *const *v, size_t n)
{
    static const char lua[] = "local out = {}\n"
                              "for i = 2, #KEYS do\n"
                              "  local h = redis.call('HMGET', KEYS[i], 'client_id', 'client_name',"
                              " 'scope', 'resource', 'approved_at', 'last_used_at')\n"
                              "  if not h[1] then\n"
                              "    redis.call('SREM', KEYS[1], ARGV[i - 1])\n"
                              "  else\n"
                              "    out[#out + 1] = ARGV[i - 1]\n"
                              "    for k = 1, 6 do out[#out + 1] = h[k] or '' end\n"
                              "  end\n"
                              "end\n"
                              "return out\n";
    size_t m = n < OAUTH_GRANTS_MAX ? n : OAUTH_GRANTS_MAX;
    const char **args = xcalloc(1 + 2 * m, sizeof(*args));
    char **keys = xcalloc(m + 1, sizeof(*keys));
    keys[m] = xmalloc(ARG_MAX);
    snprintf(keys[m], ARG_MAX, STORE_KEY_USER "%s:grants", j->user_id);
    args[0] = keys[m];
    for (size_t i = 0; i < m; i++) {
        keys[i] = xmalloc(ARG_MAX);
        snprintf(keys[i], ARG_MAX, STORE_KEY_GRANT "%s:%s", j->user_id, v[i]);
        args[1 + i] = keys[i];
        args[1 + m + i] = v[i];
    }
    store_eval(j->st, lua, (int)(1 + m), args, 1 + 2 * m, j->cb, j->arg);
    for (size_t i = 0; i <= m; i++)
        free(keys[i]);
    free(keys);
    free(args);
    return true;
}

void oauth_store_grants_list(struct store *st, const char *user_id, store_eval_cb cb, void *arg)
{
    struct set_job *j = xcalloc(1, sizeof(*j));
    *j = (struct set_job){
        .st = st, .cb = cb, .arg = arg, .user_id = xstrdup(user_id), .run = grants_list_run};
    char key[ARG_MAX];
    snprintf(key, sizeof(key), STORE_KEY_USER "%s:grants", user_id);
    set_read(j, key, OAUTH_GRANTS_MAX);
}

bool oauth_grant_id_valid(const char *gid)
{
    return strlen(gid) == OAUTH_HEX_LEN && strspn(gid, "0123456789abcdef") == OAUTH_HEX_LEN;
}

size_t oauth_store_grants_read(const char *const *v, size_t n,
                               struct oauth_grant out[OAUTH_GRANTS_MAX])
{
    size_t count = n % GRANT_FIELDS == 0 ? n / GRANT_FIELDS : 0;
    count = count < OAUTH_GRANTS_MAX ? count : OAUTH_GRANTS_MAX;
    for (size_t i = 0; i < count; i++) {
        const char *const *f = v + GRANT_FIELDS * i;
        out[i] = (struct oauth_grant){.grant_id = f[0],
                                      .client_id = f[1],
                                      .client_name = f[2],
                                      .scope = f[3],
                                      .resource = f[4],
                                      .approved_at = strtoll(f[5], NULL, 10),
                                      .last_used_at = strtoll(f[6], NULL, 10)};
    }
    return count;
}

static void grant_fams_key(const struct set_job *j, char out[ARG_MAX])
{
    snprintf(out, ARG_MAX, STORE_KEY_GRANT "%s:%s:fams", j->user_id, j->gid);
}

static void grant_batch_done(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                             size_t n)
{
    (void)lens;
    struct set_job *j = arg;
    if (err == P2A_OK && n >= 1 && strtol(v[0], NULL, 10) > 0) { /* more may be left */
        char key[ARG_MAX];
        grant_fams_key(j, key);
        set_read(j, key, GRANT_REVOKE_BATCH);
        return;
    }
    const char *done = err != P2A_OK || n < 1 ? NULL : v[0];
    size_t len = done ? strlen(done) : 0;
    j->cb(j->arg, err, done ? &done : NULL, &len, done ? 1 : 0);
    set_job_free(j);
}

/* Revokes up to GRANT_REVOKE_BATCH of the grant's families (each with its access tokens)
 * and takes them out of its set; a batch with none left removes the grant. Reply: {families
 * revoked in this batch}, or {0} when the grant is gone now, {-1} when there was none. */
static bool grant_revoke_run(struct set_job *j, const char *const *v, size_t n)
{
    static const char lua[] = LUA_REVOKE_FAMILY
        "local fams = (#KEYS - 6) / 2\n" /* grant, fams, user's grants, families, 3 */
        "if fams == 0 then\n"
        "  if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end\n"
        "  redis.call('DEL', KEYS[1], KEYS[2])\n"
        "  redis.call('SREM', KEYS[3], ARGV[2])\n"
        "  return {0}\n"
        "end\n"
        "for f = 1, fams do\n"
        "  local fk, fat = KEYS[2 + 2 * f], KEYS[3 + 2 * f]\n"
        "  if redis.call('EXISTS', fk) == 1 then revoke_family(fk, fat, ARGV[1]) end\n"
        "  redis.call('SREM', KEYS[2], ARGV[2 + f])\n"
        "end\n"
        "return {fams}\n";
    size_t m = n < GRANT_REVOKE_BATCH ? n : GRANT_REVOKE_BATCH;
    size_t nkeys = 3 + 2 * m + 3, nargs = nkeys + 2 + m;
    const char **args = xcalloc(nargs, sizeof(*args));
    char **owned = xcalloc(nkeys, sizeof(*owned));
    for (size_t i = 0; i < nkeys; i++)
        owned[i] = xmalloc(ARG_MAX);
    snprintf(owned[0], ARG_MAX, STORE_KEY_GRANT "%s:%s", j->user_id, j->gid);
    grant_fams_key(j, owned[1]);
    snprintf(owned[2], ARG_MAX, STORE_KEY_USER "%s:grants", j->user_id);
    for (size_t i = 0; i < m; i++) {
        snprintf(owned[3 + 2 * i], ARG_MAX, STORE_KEY_FAMILY "%s", v[i]);
        snprintf(owned[4 + 2 * i], ARG_MAX, STORE_KEY_FAMILY "%s:at", v[i]);
    }
    snprintf(owned[nkeys - 3], ARG_MAX, "%s", STORE_KEY_REVOKED);
    snprintf(owned[nkeys - 2], ARG_MAX, "%s", STORE_KEY_REVSEQ);
    snprintf(owned[nkeys - 1], ARG_MAX, "%s", STORE_KEY_REVLOG);
    for (size_t i = 0; i < nkeys; i++)
        args[i] = owned[i];
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)j->now_ms);
    args[nkeys] = now;
    args[nkeys + 1] = j->gid;
    for (size_t i = 0; i < m; i++)
        args[nkeys + 2 + i] = v[i];
    store_eval_durable(j->st, lua, (int)nkeys, args, nargs, grant_batch_done, j);
    for (size_t i = 0; i < nkeys; i++)
        free(owned[i]);
    free(owned);
    free(args);
    return false; /* grant_batch_done has j now */
}

void oauth_store_grant_revoke(struct store *st, const char *user_id, const char *grant_id,
                              int64_t now_ms, store_eval_cb cb, void *arg)
{
    struct set_job *j = xcalloc(1, sizeof(*j));
    *j = (struct set_job){.st = st,
                          .cb = cb,
                          .arg = arg,
                          .user_id = xstrdup(user_id),
                          .gid = xstrdup(grant_id),
                          .now_ms = now_ms,
                          .run = grant_revoke_run};
    char key[ARG_MAX];
    grant_fams_key(j, key);
    set_read(j, key, GRANT_REVOKE_BATCH);
}
