/* store_grants.c -- grants (remembered consent) as Lua scripts (see store_grants.h; the
 * scripts are lua/). */
#include "store_grants.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_script.h"
#include "xalloc.h"

#define GRANT_FIELDS 7 /* of each grant in a listing: its id and six fields */
/* members a grant script takes at once, within store_eval()'s 64 arguments (and
 * OAUTH_GRANTS_MAX for a listing: a key and an id each) */
#define GRANT_REVOKE_BATCH 18 /* families revoked a batch: two keys and an id each */

bool oauth_grant_id_valid(const char *gid)
{
    return strlen(gid) == OAUTH_HEX_LEN && strspn(gid, "0123456789abcdef") == OAUTH_HEX_LEN;
}

/* {scope, resource, disabled} */
static void parse_grant(union store_answer_cb cb, void *arg, p2a_err err, const char *const *v,
                        const size_t *lens, size_t n)
{
    (void)lens;
    if ((err = store_answer_err(err, n, 3)) != P2A_OK) {
        cb.grant(arg, err, NULL);
        return;
    }
    struct store_grant_approval g = {
        .scope = v[0], .resource = v[1], .user_disabled = strcmp(v[2], "1") == 0};
    cb.grant(arg, P2A_OK, &g);
}

void oauth_store_grant_get(struct store *st, const char *user_id, const char *client_id,
                           oauth_grant_cb cb, void *arg)
{
    char gid[ARG_MAX];
    store_grant_key(user_id, client_id, gid);
    EVAL(st, store_lua_grant_get, 2, ANSWER(parse_grant, grant, cb, arg), KEY(STORE_KEY_GRANT, gid),
         KEY(STORE_KEY_USER, user_id));
}

void oauth_store_grant_approve(struct store *st, const char *user_id, const char *client_id,
                               const char *client_name, const char *scope, const char *resource,
                               int64_t now, int ttl_s, store_status_cb cb, void *arg)
{
    char gid[ARG_MAX];
    store_grant_key(user_id, client_id, gid);
    EVAL(st, store_lua_grant_approve, 2, STATUS(cb, arg), KEY(STORE_KEY_GRANT, gid),
         KEYX(STORE_KEY_USER, user_id, ":grants"), STR(client_id), STR(client_name), STR(scope),
         STR(resource), NUM(now), NUM(ttl_s), STR(strrchr(gid, ':') + 1));
}

/* ---- scripts over a set's members: jobs (store_script.h) ---------------------------------- */

static void user_grants_key(const char *user_id, char out[ARG_MAX])
{
    snprintf(out, ARG_MAX, STORE_KEY_USER "%s:grants", user_id);
}

static void grant_fams_key(const struct store_job *j, char out[ARG_MAX])
{
    snprintf(out, ARG_MAX, STORE_KEY_GRANT "%s:%s:fams", j->user_id, j->gid);
}

/* Some of the set's members, then j->step with them. */
static void members_read(struct store_job *j, const char *key, int count)
{
    store_job_read(j, store_lua_set_members, key, count);
}

/* The user's grant ids came: one script over the user's set and those grants. */
static bool grants_list_run(struct store_job *j, const char *const *v, size_t n)
{
    size_t m = n < OAUTH_GRANTS_MAX ? n : OAUTH_GRANTS_MAX;
    const char **args = xcalloc(1 + 2 * m, sizeof(*args));
    char **keys = xcalloc(m + 1, sizeof(*keys));
    keys[m] = xmalloc(ARG_MAX);
    user_grants_key(j->user_id, keys[m]);
    args[0] = keys[m];
    for (size_t i = 0; i < m; i++) {
        keys[i] = xmalloc(ARG_MAX);
        snprintf(keys[i], ARG_MAX, STORE_KEY_GRANT "%s:%s", j->user_id, v[i]);
        args[1 + i] = keys[i];
        args[1 + m + i] = v[i];
    }
    store_eval(j->st, store_lua_grants_list, (int)(1 + m), args, 1 + 2 * m, j->to, j->to_arg);
    for (size_t i = 0; i <= m; i++)
        free(keys[i]);
    free(keys);
    free(args);
    return true;
}

/* GRANT_FIELDS a grant: grant_id client_id client_name scope resource approved_at
 * last_used_at. A reply of another length is no listing. */
static void parse_grants(union store_answer_cb cb, void *arg, p2a_err err, const char *const *v,
                         const size_t *lens, size_t n)
{
    (void)lens;
    struct store_grant out[OAUTH_GRANTS_MAX];
    size_t count = n % GRANT_FIELDS == 0 ? n / GRANT_FIELDS : 0;
    count = count < OAUTH_GRANTS_MAX ? count : OAUTH_GRANTS_MAX;
    if (err == P2A_OK && n > 0 && count == 0)
        err = P2A_ERR_UNAVAILABLE;
    if (err != P2A_OK) {
        cb.grants(arg, err, NULL, 0);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const char *const *f = v + GRANT_FIELDS * i;
        out[i] = (struct store_grant){.grant_id = f[0],
                                      .client_id = f[1],
                                      .client_name = f[2],
                                      .scope = f[3],
                                      .resource = f[4],
                                      .approved_at = strtoll(f[5], NULL, 10),
                                      .last_used_at = strtoll(f[6], NULL, 10)};
    }
    cb.grants(arg, P2A_OK, out, count);
}

void oauth_store_grants_list(struct store *st, const char *user_id, oauth_grants_cb cb, void *arg)
{
    struct store_job *j = store_job_new(st, grants_list_run, ANSWER(parse_grants, grants, cb, arg));
    j->user_id = xstrdup(user_id);
    char key[ARG_MAX];
    user_grants_key(user_id, key);
    members_read(j, key, OAUTH_GRANTS_MAX);
}

/* A batch is done: with families revoked, more may be left (read the set again); else the
 * answer, {0} or {-1}. */
static void grant_batch_done(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                             size_t n)
{
    struct store_job *j = arg;
    if (err == P2A_OK && n >= 1 && strtol(v[0], NULL, 10) > 0) {
        char key[ARG_MAX];
        grant_fams_key(j, key);
        members_read(j, key, GRANT_REVOKE_BATCH);
        return;
    }
    j->to(j->to_arg, err, v, lens, err == P2A_OK && n >= 1 ? 1 : 0);
    store_job_free(j);
}

/* Revokes up to GRANT_REVOKE_BATCH of the grant's families (each with its access tokens)
 * and takes them out of its set; a batch with none left removes the grant (lua). */
static bool grant_revoke_run(struct store_job *j, const char *const *v, size_t n)
{
    size_t m = n < GRANT_REVOKE_BATCH ? n : GRANT_REVOKE_BATCH;
    size_t nkeys = 3 + 2 * m + 3, nargs = nkeys + 2 + m;
    const char **args = xcalloc(nargs, sizeof(*args));
    char **owned = xcalloc(nkeys, sizeof(*owned));
    for (size_t i = 0; i < nkeys; i++)
        owned[i] = xmalloc(ARG_MAX);
    snprintf(owned[0], ARG_MAX, STORE_KEY_GRANT "%s:%s", j->user_id, j->gid);
    grant_fams_key(j, owned[1]);
    user_grants_key(j->user_id, owned[2]);
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
    store_eval_durable(j->st, store_lua_grant_revoke, (int)nkeys, args, nargs, grant_batch_done, j);
    for (size_t i = 0; i < nkeys; i++)
        free(owned[i]);
    free(owned);
    free(args);
    return false; /* grant_batch_done has j now */
}

void oauth_store_grant_revoke(struct store *st, const char *user_id, const char *grant_id,
                              int64_t now_ms, store_status_cb cb, void *arg)
{
    struct store_job *j = store_job_new(st, grant_revoke_run, STATUS(cb, arg));
    j->user_id = xstrdup(user_id);
    j->gid = xstrdup(grant_id);
    j->now_ms = now_ms;
    char key[ARG_MAX];
    grant_fams_key(j, key);
    members_read(j, key, GRANT_REVOKE_BATCH);
}
