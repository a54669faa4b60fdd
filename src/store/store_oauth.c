/* store_oauth.c -- clients, codes, refresh token families and the other OAuth state as Lua
 * scripts (see store_oauth.h; the scripts are lua/). */
#include "store_oauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients.h"
#include "store_script.h"
#include "xalloc.h"

/* ---- codes -------------------------------------------------------------------------------- */

void oauth_store_code_create(struct store *st, const char *code_digest, const char *binding,
                             store_status_cb cb, void *arg)
{
    EVAL(st, store_lua_code_create, 1, STATUS(cb, arg), KEY(STORE_KEY_CODE, code_digest),
         STR(binding), NUM(OAUTH_CODE_TTL_S));
}

/* {0, binding}, {1, fid}, {-1} */
static void parse_code(union store_answer_cb cb, void *arg, p2a_err err, const char *const *v,
                       const size_t *lens, size_t n)
{
    if ((err = store_answer_err(err, n, 1)) != P2A_OK) {
        cb.code(arg, err, NULL);
        return;
    }
    struct store_code c = {.use = STORE_CODE_UNKNOWN};
    if (strcmp(v[0], "-1") != 0 && n >= 2) {
        if (strcmp(v[0], "1") == 0)
            c = (struct store_code){.use = STORE_CODE_REUSED, .fid = v[1]};
        else
            c = (struct store_code){
                .use = STORE_CODE_FIRST, .binding = v[1], .binding_len = lens[1]};
    }
    cb.code(arg, P2A_OK, &c);
}

void oauth_store_code_redeem(struct store *st, const char *code_digest, const char *fid,
                             oauth_code_cb cb, void *arg)
{
    EVAL(st, store_lua_code_redeem, 1, ANSWER(parse_code, code, cb, arg),
         KEY(STORE_KEY_CODE, code_digest), STR(fid));
}

/* ---- families ----------------------------------------------------------------------------- */

void oauth_store_family_create(struct store *st, const char *fid, const char *client_id,
                               const char *user_id, const char *scope, const char *resource,
                               const char *rt_digest, const char *at_jti, int64_t at_exp, int ttl_s,
                               int64_t now_ms, store_status_cb cb, void *arg)
{
    char gid[ARG_MAX];
    store_grant_key(user_id, client_id, gid);
    EVAL(st, store_lua_family_create, 9, STATUS(cb, arg), FAMILY(fid),
         KEY(STORE_KEY_REFRESH, rt_digest), GRANT(gid), KEY(STORE_KEY_USER, user_id), REVOCATION,
         STR(client_id), STR(user_id), STR(scope), STR(resource), STR(rt_digest), STR(fid),
         STR(at_jti), NUM(at_exp), NUM(ttl_s), NUM(now_ms));
}

void oauth_store_family_add_at(struct store *st, const char *fid, const char *user_id,
                               const char *jti, int64_t exp, int64_t now_ms, store_status_cb cb,
                               void *arg)
{
    EVAL(st, store_lua_family_add_at, 6, STATUS(cb, arg), FAMILY(fid), KEY(STORE_KEY_USER, user_id),
         REVOCATION, STR(jti), NUM(exp), NUM(now_ms));
}

void oauth_store_family_revoke(struct store *st, const char *fid, int64_t now_ms,
                               store_revoked_cb cb, void *arg)
{
    REVOKING(st, store_lua_family_revoke, 5, ANSWER(store_parse_revoked, revoked, cb, arg),
             FAMILY(fid), REVOCATION, NUM(now_ms));
}

/* ---- what a refresh token leads to: a job ----------------------------------------------- */

/* A script about a refresh token's family must name the family's keys, and only Redis knows
 * which family a token belongs to: its id is read first (rt:<digest> -> fid, never changed
 * once written), then the script runs with every key declared and checks the token still
 * names that family (lua: a token that names another, or none any more, is unknown). */
static struct store_job *refresh_job(struct store *st, const char *rt_digest, store_job_step step,
                                     store_eval_cb to, void *to_arg)
{
    struct store_job *j = store_job_new(st, step, to, to_arg);
    snprintf(j->digest, sizeof(j->digest), "%s", rt_digest);
    return j;
}

/* The job's first read: the family of the token. */
static void refresh_job_start(struct store_job *j)
{
    char key[ARG_MAX];
    snprintf(key, sizeof(key), STORE_KEY_REFRESH "%s", j->digest);
    store_job_read(j, store_lua_get, key, -1);
}

/* The first read: the family's id into j->fid; false when the token is unknown. */
static bool family_found(struct store_job *j, const char *const *v, size_t n)
{
    if (n < 1 || v[0][0] == '\0' || strlen(v[0]) > OAUTH_HEX_LEN)
        return false;
    snprintf(j->fid, sizeof(j->fid), "%s", v[0]);
    return true;
}

static bool refresh_run(struct store_job *j, const char *const *v, size_t n)
{
    if (!family_found(j, v, n)) {
        static const char *const unknown[] = {"-1"};
        static const size_t len[] = {2};
        j->to(j->to_arg, P2A_OK, unknown, len, 1);
        return true;
    }
    EVAL(j->st, store_lua_refresh, 7, TO(j->to, j->to_arg), KEY(STORE_KEY_REFRESH, j->digest),
         FAMILY(j->fid), KEY(STORE_KEY_REFRESH, j->new_digest), REVOCATION, STR(j->fid),
         STR(j->client_id), STR(j->new_digest), STR(j->scope), STR(j->resource), NUM(j->now_ms),
         NUM(j->grace_s), NUM(j->ttl_s), STR(j->digest));
    return true;
}

/* {0, fid, user_id, scope, resource}, {-3, jti, exp, ...}, {code} */
static void parse_refresh(union store_answer_cb cb, void *arg, p2a_err err, const char *const *v,
                          const size_t *lens, size_t n)
{
    (void)lens;
    if ((err = store_answer_err(err, n, 1)) != P2A_OK) {
        cb.refresh(arg, err, NULL);
        return;
    }
    struct revocation revoked[STORE_REVOKED_MAX];
    struct store_refresh r = {.code = strtoll(v[0], NULL, 10)};
    if (r.code == 0 && n >= 5) {
        r.fid = v[1], r.user_id = v[2], r.scope = v[3], r.resource = v[4];
    } else if (r.code == 0) {
        r.code = -1; /* a short answer: nothing to go on with */
    } else if (r.code == -3) {
        r.nrevoked = store_read_revoked(v, 1, n, revoked);
        r.revoked = revoked;
    }
    cb.refresh(arg, P2A_OK, &r);
}

void oauth_store_refresh(struct store *st, const char *rt_digest, const char *client_id,
                         const char *new_rt_digest, const char *scope, const char *resource,
                         int64_t now_ms, int grace_s, int ttl_s, oauth_refresh_cb cb, void *arg)
{
    struct store_job *j =
        refresh_job(st, rt_digest, refresh_run, ANSWER(parse_refresh, refresh, cb, arg));
    j->client_id = store_dup_or_empty(client_id);
    j->new_digest = store_dup_or_empty(new_rt_digest);
    j->scope = store_dup_or_empty(scope);
    j->resource = store_dup_or_empty(resource);
    j->now_ms = now_ms;
    j->grace_s = grace_s;
    j->ttl_s = ttl_s;
    refresh_job_start(j);
}

static bool refresh_info_run(struct store_job *j, const char *const *v, size_t n)
{
    if (n < 1 || v[0][0] == '\0' || strlen(v[0]) > VALIDATE_USER_ID_MAX) {
        j->to(j->to_arg, P2A_OK, NULL, NULL, 0); /* the family has gone: unknown */
        return true;
    }
    j->user_id = xstrdup(v[0]);
    EVAL(j->st, store_lua_refresh_info, 3, TO(j->to, j->to_arg), KEY(STORE_KEY_REFRESH, j->digest),
         KEY(STORE_KEY_FAMILY, j->fid), KEY(STORE_KEY_USER, j->user_id), STR(j->fid),
         STR(j->digest), STR(j->user_id));
    return true;
}

/* The step between: the family's user_id, for a script that names the user's record (the
 * script checks the family names that user, so a family that changed in between is unknown
 * there). */
static bool refresh_info_user(struct store_job *j, const char *const *v, size_t n)
{
    if (!family_found(j, v, n)) {
        j->to(j->to_arg, P2A_OK, NULL, NULL, 0);
        return true;
    }
    char key[ARG_MAX];
    snprintf(key, sizeof(key), STORE_KEY_FAMILY "%s", j->fid);
    j->step = refresh_info_run;
    store_job_read(j, store_lua_family_user, key, -1);
    return false;
}

/* {client_id, user_id, scope, resource, ttl_s}, or {} */
static void parse_refresh_info(union store_answer_cb cb, void *arg, p2a_err err,
                               const char *const *v, const size_t *lens, size_t n)
{
    (void)lens;
    if (err != P2A_OK || n < 5) {
        cb.refresh_info(arg, err, NULL);
        return;
    }
    struct store_refresh_info info = {.client_id = v[0],
                                      .user_id = v[1],
                                      .scope = v[2],
                                      .resource = v[3],
                                      .ttl_s = strtoll(v[4], NULL, 10)};
    cb.refresh_info(arg, P2A_OK, &info);
}

void oauth_store_refresh_info(struct store *st, const char *rt_digest, oauth_refresh_info_cb cb,
                              void *arg)
{
    refresh_job_start(refresh_job(st, rt_digest, refresh_info_user,
                                  ANSWER(parse_refresh_info, refresh_info, cb, arg)));
}

static bool refresh_revoke_run(struct store_job *j, const char *const *v, size_t n)
{
    if (!family_found(j, v, n)) {
        j->to(j->to_arg, P2A_OK, NULL, NULL, 0);
        return true;
    }
    REVOKING(j->st, store_lua_refresh_revoke, 6, TO(j->to, j->to_arg),
             KEY(STORE_KEY_REFRESH, j->digest), FAMILY(j->fid), REVOCATION, STR(j->fid),
             STR(j->client_id), NUM(j->now_ms));
    return true;
}

void oauth_store_refresh_revoke(struct store *st, const char *rt_digest, const char *client_id,
                                int64_t now_ms, store_revoked_cb cb, void *arg)
{
    struct store_job *j = refresh_job(st, rt_digest, refresh_revoke_run,
                                      ANSWER(store_parse_revoked, revoked, cb, arg));
    j->client_id = store_dup_or_empty(client_id);
    j->now_ms = now_ms;
    refresh_job_start(j);
}

/* ---- access tokens, assertions, limits, upstream sign-ins -------------------------------- */

void oauth_store_jti_revoke(struct store *st, const char *jti, int64_t exp, int64_t now_ms,
                            store_status_cb cb, void *arg)
{
    REVOKING(st, store_lua_jti_revoke, 3, STATUS(cb, arg), REVOCATION, STR(jti), NUM(exp),
             NUM(now_ms));
}

void oauth_store_assertion_once(struct store *st, const char *client_id, const char *jti,
                                int64_t exp, int skew_s, store_status_cb cb, void *arg)
{
    char both[OAUTH_MAX_CLIENT_ID + 160], digest[OAUTH_HEX_LEN + 1];
    int n = snprintf(both, sizeof(both), "%s\n%s", client_id, jti);
    oauth_digest_hex(both, (size_t)n < sizeof(both) ? (size_t)n : sizeof(both) - 1, digest);
    EVAL(st, store_lua_assertion_once, 1, STATUS(cb, arg), KEY(STORE_KEY_ASSERTION, digest),
         NUM(exp), NUM(skew_s));
}

/* {verdict, retry_after_s}: both or nothing */
static void parse_limit(union store_answer_cb cb, void *arg, p2a_err err, const char *const *v,
                        const size_t *lens, size_t n)
{
    store_parse_status(cb, arg, store_answer_err(err, n, 2), v, lens, n);
}

void oauth_store_limit_hit(struct store *st, const char *what, const char *addr, int per_addr,
                           int global, int window_s, store_status_cb cb, void *arg)
{
    /* "<what>}:<addr>" and "<what>}:all": the counters' ids after STORE_KEY_RATE, tagged by
     * what */
    char one[ARG_MAX], all[ARG_MAX];
    snprintf(one, ARG_MAX, "%s}:%s", what, addr);
    snprintf(all, ARG_MAX, "%s}:all", what);
    EVAL(st, store_lua_limit_hit, 2, ANSWER(parse_limit, status, cb, arg), KEY(STORE_KEY_RATE, one),
         KEY(STORE_KEY_RATE, all), NUM(per_addr), NUM(global), NUM(window_s),
         NUM(OAUTH_LIMIT_FRESH));
}

void oauth_store_upstream_once(struct store *st, const char *state_digest, int ttl_s,
                               store_status_cb cb, void *arg)
{
    EVAL(st, store_lua_upstream_once, 1, STATUS(cb, arg), KEY(STORE_KEY_UPSTREAM, state_digest),
         NUM(ttl_s));
}
