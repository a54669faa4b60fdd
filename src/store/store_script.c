/* store_script.c -- the arguments, answers and jobs the store's scripts share (see
 * store_script.h). */
#include "store_script.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void store_eval_args(struct store *st, const char *lua, int nkeys, const struct arg *a, size_t n,
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

/* ---- answers ------------------------------------------------------------------------------ */

struct answer {
    store_parse_fn parse;
    union store_answer_cb cb;
    void *arg;
};

void *store_answer_new(store_parse_fn parse, union store_answer_cb cb, void *arg)
{
    struct answer *a = xcalloc(1, sizeof(*a));
    *a = (struct answer){.parse = parse, .cb = cb, .arg = arg};
    return a;
}

void store_answer(void *answer, p2a_err err, const char *const *v, const size_t *lens, size_t n)
{
    struct answer a = *(struct answer *)answer;
    free(answer);
    a.parse(a.cb, a.arg, err, v, lens, n);
}

void store_status_ignore(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)arg, (void)err, (void)code, (void)value;
}

p2a_err store_answer_err(p2a_err err, size_t n, size_t need)
{
    return err == P2A_OK && n < need ? P2A_ERR_UNAVAILABLE : err;
}

void store_parse_status(union store_answer_cb cb, void *arg, p2a_err err, const char *const *v,
                        const size_t *lens, size_t n)
{
    (void)lens;
    if ((err = store_answer_err(err, n, 1)) != P2A_OK)
        cb.status(arg, err, 0, 0);
    else
        cb.status(arg, P2A_OK, strtoll(v[0], NULL, 10), n >= 2 ? strtoll(v[1], NULL, 10) : 0);
}

size_t store_read_revoked(const char *const *v, size_t from, size_t n,
                          struct revocation out[STORE_REVOKED_MAX])
{
    size_t count = 0;
    for (size_t i = from; i + 1 < n && count < STORE_REVOKED_MAX; i += 2)
        out[count++] = (struct revocation){.jti = v[i], .exp = strtoll(v[i + 1], NULL, 10)};
    return count;
}

void store_parse_revoked(union store_answer_cb cb, void *arg, p2a_err err, const char *const *v,
                         const size_t *lens, size_t n)
{
    (void)lens;
    struct revocation out[STORE_REVOKED_MAX];
    size_t count = err == P2A_OK ? store_read_revoked(v, 0, n, out) : 0;
    cb.revoked(arg, err, out, count);
}

/* ---- jobs --------------------------------------------------------------------------------- */

struct store_job *store_job_new(struct store *st, store_job_step step, store_eval_cb to,
                                void *to_arg)
{
    struct store_job *j = xcalloc(1, sizeof(*j));
    j->st = st;
    j->step = step;
    j->to = to;
    j->to_arg = to_arg;
    return j;
}

void store_job_free(struct store_job *j)
{
    free(j->client_id);
    free(j->new_digest);
    free(j->scope);
    free(j->resource);
    free(j->user_id);
    free(j->gid);
    free(j);
}

static void job_read_done(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                          size_t n)
{
    (void)lens;
    struct store_job *j = arg;
    if (err != P2A_OK)
        j->to(j->to_arg, err, NULL, NULL, 0);
    else if (!j->step(j, v, n))
        return; /* it read again */
    store_job_free(j);
}

void store_job_read(struct store_job *j, const char *lua, const char *key, int64_t num)
{
    if (num < 0)
        EVAL(j->st, lua, 1, TO(job_read_done, j), KEY(key, ""));
    else
        EVAL(j->st, lua, 1, TO(job_read_done, j), KEY(key, ""), NUM(num));
}

char *store_dup_or_empty(const char *s)
{
    return xstrdup(s != NULL ? s : "");
}

void store_grant_key(const char *user_id, const char *client_id, char out[ARG_MAX])
{
    char digest[OAUTH_HEX_LEN + 1];
    oauth_digest_hex(client_id, strlen(client_id), digest);
    snprintf(out, ARG_MAX, "%s:%s", user_id, digest);
}
