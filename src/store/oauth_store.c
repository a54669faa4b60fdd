/* oauth_store.c -- OAuth state in Redis as Lua scripts (see oauth_store.h). */
#include "oauth_store.h"

#include <assert.h>
#include <stdio.h>

#include "netaddr.h"
#include "clients.h"
#include "oauth.h"
#include "store_keys.h"

/* The longest argument eval_args() formats: a sign-in pair's key (rl:login-pair:<user>:<addr>). */
#define ARG_MAX (sizeof(STORE_KEY_RATE "login-pair::") + OAUTH_MAX_USERNAME + NETADDR_MAX)
#define ARGS_MAX 12

/* One argument of a script: a string, a number, or a key: a prefix (STORE_KEY_*) and an id.
 * Ids are bounded by their callers' checks, well within ARG_MAX. */
struct arg {
    enum { A_STR, A_NUM, A_KEY } kind;
    const char *prefix, *s;
    int64_t num;
};
/* clang-format off */
#define STR(x) {A_STR, NULL, (x), 0}
#define NUM(x) {A_NUM, NULL, NULL, (x)}
#define KEY(p, id) {A_KEY, (p), (id), 0}
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
            snprintf(text[i], ARG_MAX, "%s%s", a[i].prefix, a[i].s);
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

/* Revokes family fid and its unexpired access tokens; returns {jti, exp, ...} revoked now. */
#define LUA_REVOKE_FAMILY                                                                          \
    STORE_LUA_REVOKE                                                                               \
    "local function revoke_family(fid, ms)\n"                                                      \
    "  local fk = '" STORE_KEY_FAMILY "' .. fid\n"                                                 \
    "  redis.call('HSET', fk, 'revoked', '1')\n"                                                   \
    "  if redis.call('TTL', fk) < 0 then redis.call('EXPIRE', fk, 2592000) end\n"                  \
    "  local now = math.floor(tonumber(ms) / 1000)\n"                                              \
    "  local ats = redis.call('ZRANGEBYSCORE', fk .. ':at', '(' .. now, '+inf', 'WITHSCORES')\n"   \
    "  local out = {}\n"                                                                           \
    "  for i = 1, #ats, 2 do\n"                                                                    \
    "    if revoke(ats[i], ats[i + 1], ms) and #out < 60 then\n"                                   \
    "      out[#out + 1] = ats[i]; out[#out + 1] = ats[i + 1]\n"                                   \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return out\n"                                                                               \
    "end\n"

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

void oauth_store_client_get(struct store *st, const char *client_id, int idle_s, store_eval_cb cb,
                            void *arg)
{
    static const char lua[] =
        "local rec = redis.call('GET', KEYS[1])\n"
        "if not rec then return '' end\n"
        "if redis.call('TTL', KEYS[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
        "return rec\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_CLIENT, client_id), NUM(idle_s));
}

void oauth_store_user_create(struct store *st, const char *username, const char *user_id,
                             const char *hash, int64_t now, store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
        "redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'hash', ARGV[2], 'created_at', ARGV[3])\n"
        "return 1\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_ACCOUNT, username), STR(user_id), STR(hash), NUM(now));
}

/* The counters of sign-in attempts: one account from one address (a hard limit per
 * window), and one account from anywhere (failures beyond a number space attempts out):
 * the ids to follow STORE_KEY_RATE. */
static void login_keys(const char *username, const char *addr, char pair[ARG_MAX],
                       char acct[ARG_MAX])
{
    snprintf(pair, ARG_MAX, "login-pair:%s:%s", username, addr);
    snprintf(acct, ARG_MAX, "login-account:%s", username);
}

void oauth_store_login_reserve(struct store *st, const char *username, const char *addr,
                               const struct oauth_login_limits *lim, int64_t now_ms,
                               store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "local now = tonumber(ARGV[3])\n"
        "local pair = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
        "if pair >= tonumber(ARGV[1]) then\n"
        "  return {1, '', '', math.max(redis.call('TTL', KEYS[2]), 1)}\n"
        "end\n"
        "local a = redis.call('HMGET', KEYS[3], 'n', 'next')\n"
        "local n = tonumber(a[1] or '0')\n"
        "local nxt = tonumber(a[2] or '0')\n"
        "if now < nxt then return {2, '', '', math.ceil((nxt - now) / 1000)} end\n"
        "redis.call('INCR', KEYS[2])\n"
        "if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end\n"
        "n = n + 1\n"
        "local free = tonumber(ARGV[4])\n"
        "if n > free then\n"
        "  local delay = math.min(2 ^ math.min(n - free - 1, 30), tonumber(ARGV[5]))\n"
        "  nxt = now + delay * 1000\n"
        "end\n"
        "redis.call('HSET', KEYS[3], 'n', n, 'next', nxt)\n"
        "redis.call('EXPIRE', KEYS[3], ARGV[2])\n"
        "local h = redis.call('HMGET', KEYS[1], 'user_id', 'hash')\n"
        "return {0, h[1] or '', h[2] or '', 0}\n";
    char pair[ARG_MAX], acct[ARG_MAX];
    login_keys(username, addr, pair, acct);
    EVAL(st, lua, 3, cb, arg, KEY(STORE_KEY_ACCOUNT, username), KEY(STORE_KEY_RATE, pair),
         KEY(STORE_KEY_RATE, acct), NUM(lim->per_pair), NUM(OAUTH_LOGIN_WINDOW_S), NUM(now_ms),
         NUM(lim->throttle_after), NUM(OAUTH_LOGIN_MAX_DELAY_S));
}

void oauth_store_session_create(struct store *st, const char *sid_digest, const char *user_id,
                                const char *username, const char *addr, int64_t auth_time,
                                int ttl_s, store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'username', ARGV[2], 'auth_time',"
        " ARGV[3])\n"
        "redis.call('EXPIRE', KEYS[1], ARGV[4])\n"
        "redis.call('DEL', KEYS[2], KEYS[3])\n"
        "return 1\n";
    char pair[ARG_MAX], acct[ARG_MAX];
    login_keys(username, addr, pair, acct);
    EVAL(st, lua, 3, cb, arg, KEY(STORE_KEY_SESSION, sid_digest), KEY(STORE_KEY_RATE, pair),
         KEY(STORE_KEY_RATE, acct), STR(user_id), STR(username), NUM(auth_time), NUM(ttl_s));
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
    static const char lua[] = STORE_LUA_REVOKE
        "local fk = KEYS[1]\n"
        "redis.call('ZADD', fk .. ':at', ARGV[8], ARGV[7])\n"
        "redis.call('EXPIRE', fk .. ':at', ARGV[9])\n"
        "if redis.call('HGET', fk, 'revoked') == '1' then\n"
        "  revoke(ARGV[7], ARGV[8], ARGV[10])\n"
        "  return 0\n"
        "end\n"
        "redis.call('HSET', fk, 'client_id', ARGV[1], 'user_id', ARGV[2], 'scope', ARGV[3],"
        " 'resource', ARGV[4], 'cur', ARGV[5], 'prev', '', 'prev_at', '0', 'revoked', '0')\n"
        "redis.call('EXPIRE', fk, ARGV[9])\n"
        "redis.call('SET', '" STORE_KEY_REFRESH "' .. ARGV[5], ARGV[6], 'EX', ARGV[9])\n"
        "return 1\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_FAMILY, fid), STR(client_id), STR(user_id), STR(scope),
         STR(resource), STR(rt_digest), STR(fid), STR(at_jti), NUM(at_exp), NUM(ttl_s),
         NUM(now_ms));
}

void oauth_store_refresh(struct store *st, const char *rt_digest, const char *client_id,
                         const char *new_rt_digest, const char *scope, const char *resource,
                         int64_t now_ms, int grace_s, int ttl_s, store_eval_cb cb, void *arg)
{
    static const char lua[] = LUA_REVOKE_FAMILY
        "local fid = redis.call('GET', KEYS[1])\n"
        "if not fid then return {-1} end\n"
        "local fk = '" STORE_KEY_FAMILY "' .. fid\n"
        "local f = redis.call('HMGET', fk, 'client_id', 'user_id', 'scope', 'resource',"
        " 'cur', 'prev', 'prev_at', 'revoked')\n"
        "if not f[1] then return {-1} end\n"
        "if f[8] == '1' then return {-2} end\n"
        "if f[1] ~= ARGV[1] then return {-4} end\n"
        "local now = tonumber(ARGV[5])\n"
        "local d = ARGV[8]\n"
        "local grace = tonumber(ARGV[6]) * 1000\n"
        "local in_grace = d == f[6] and grace > 0 and now - tonumber(f[7]) <= grace\n"
        "local fresh = d == f[5] or in_grace\n"
        "if not fresh then\n"
        "  local out = revoke_family(fid, ARGV[5])\n"
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
        "if ARGV[3] ~= '' then\n"
        "  if not within(f[3], ARGV[3]) then return {-5} end\n"
        "  scope = ARGV[3]\n"
        "end\n"
        "if ARGV[4] ~= '' then\n"
        "  if not within(f[4], ARGV[4]) then return {-6} end\n"
        "  resources = ARGV[4]\n"
        "end\n"
        "if d == f[5] then\n"
        "  redis.call('HSET', fk, 'prev', f[5], 'prev_at', now)\n"
        "else\n" /* the grace is used up: the old token was exchanged once */
        "  redis.call('HSET', fk, 'prev', '')\n"
        "end\n"
        "redis.call('HSET', fk, 'cur', ARGV[2])\n"
        "redis.call('EXPIRE', fk, ARGV[7])\n"
        "redis.call('EXPIRE', fk .. ':at', ARGV[7])\n"
        "redis.call('SET', '" STORE_KEY_REFRESH "' .. ARGV[2], fid, 'EX', ARGV[7])\n"
        "return {0, fid, f[2], scope, resources}\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_REFRESH, rt_digest), STR(client_id), STR(new_rt_digest),
         STR(scope), STR(resource), NUM(now_ms), NUM(grace_s), NUM(ttl_s), STR(rt_digest));
}

void oauth_store_refresh_info(struct store *st, const char *rt_digest, store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "local fid = redis.call('GET', KEYS[1])\n"
        "if not fid then return {} end\n"
        "local f = redis.call('HMGET', '" STORE_KEY_FAMILY "' .. fid, 'client_id', 'user_id',"
        " 'scope', 'resource', 'cur', 'revoked')\n"
        "if not f[1] or f[6] == '1' or f[5] ~= ARGV[1] then return {} end\n"
        "return {f[1], f[2], f[3], f[4], redis.call('TTL', KEYS[1])}\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_REFRESH, rt_digest), STR(rt_digest));
}

void oauth_store_family_add_at(struct store *st, const char *fid, const char *jti, int64_t exp,
                               int64_t now_ms, store_eval_cb cb, void *arg)
{
    static const char lua[] =
        STORE_LUA_REVOKE "redis.call('ZADD', KEYS[1] .. ':at', ARGV[2], ARGV[1])\n"
                         "if redis.call('HGET', KEYS[1], 'revoked') == '1' then\n"
                         "  revoke(ARGV[1], ARGV[2], ARGV[3])\n"
                         "  return 0\n"
                         "end\n"
                         "return 1\n";
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_FAMILY, fid), STR(jti), NUM(exp), NUM(now_ms));
}

void oauth_store_family_revoke(struct store *st, const char *fid, int64_t now_ms, store_eval_cb cb,
                               void *arg)
{
    static const char lua[] = LUA_REVOKE_FAMILY "return revoke_family(ARGV[1], ARGV[2])\n";
    REVOKING(st, lua, 0, cb, arg, STR(fid), NUM(now_ms));
}

void oauth_store_refresh_revoke(struct store *st, const char *rt_digest, const char *client_id,
                                int64_t now_ms, store_eval_cb cb, void *arg)
{
    static const char lua[] = LUA_REVOKE_FAMILY "local fid = redis.call('GET', KEYS[1])\n"
                                                "if not fid then return {} end\n"
                                                "if redis.call('HGET', '" STORE_KEY_FAMILY
                                                "' .. fid, 'client_id') ~= ARGV[1] then\n"
                                                "  return {}\n"
                                                "end\n"
                                                "return revoke_family(fid, ARGV[2])\n";
    REVOKING(st, lua, 1, cb, arg, KEY(STORE_KEY_REFRESH, rt_digest), STR(client_id), NUM(now_ms));
}

void oauth_store_jti_revoke(struct store *st, const char *jti, int64_t exp, int64_t now_ms,
                            store_eval_cb cb, void *arg)
{
    static const char lua[] =
        STORE_LUA_REVOKE "if revoke(ARGV[1], ARGV[2], ARGV[3]) then return 1 end\n"
                         "return 0\n";
    REVOKING(st, lua, 0, cb, arg, STR(jti), NUM(exp), NUM(now_ms));
}

void oauth_store_assertion_once(struct store *st, const char *client_id, const char *jti,
                                int64_t exp, store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "local t = redis.call('TIME')\n"
        "local ttl = tonumber(ARGV[1]) - tonumber(t[1]) + 60\n"
        "if ttl < 1 then ttl = 1 end\n"
        "if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ttl) then return 1 end\n"
        "return 0\n";
    char both[OAUTH_MAX_CLIENT_ID + 160], digest[OAUTH_HEX_LEN + 1];
    int n = snprintf(both, sizeof(both), "%s\n%s", client_id, jti);
    oauth_digest_hex(both, (size_t)n < sizeof(both) ? (size_t)n : sizeof(both) - 1, digest);
    EVAL(st, lua, 1, cb, arg, KEY(STORE_KEY_ASSERTION, digest), NUM(exp));
}

void oauth_store_limit_hit(struct store *st, const char *what, const char *addr, int per_addr,
                           int global, int window_s, store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "for i = 1, 2 do\n"
        "  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[i]) then\n"
        "    return {i, math.max(redis.call('TTL', KEYS[i]), 1)}\n"
        "  end\n"
        "end\n"
        "for i = 1, 2 do\n"
        "  redis.call('INCR', KEYS[i])\n"
        "  if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[3]) end\n"
        "end\n"
        "return {0, 0}\n";
    char one[ARG_MAX], all[ARG_MAX];
    snprintf(one, sizeof(one), "%s:%s", what, addr);
    snprintf(all, sizeof(all), "%s-all", what);
    EVAL(st, lua, 2, cb, arg, KEY(STORE_KEY_RATE, one), KEY(STORE_KEY_RATE, all), NUM(per_addr),
         NUM(global), NUM(window_s));
}
