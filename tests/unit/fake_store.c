/* fake_store.c -- see fake_store.h. Single-threaded, as a store is. */
#include "fake_store.h"

#include "store_script.h"

#include <stdlib.h>
#include <string.h>

#include "store_audit.h"

struct store {
    int unused;
};

struct call {
    char name[32];
    char first[256];
    int kind; /* which callback */
    union {
        store_done_cb done;
        store_revoke_cb revoke;
        store_list_cb list;
        store_revocations_cb revocations;
        store_eval_cb eval;
    } cb;
    void *arg;
    bool answered;
};

#define MAX_CALLS 64
static struct call calls[MAX_CALLS];
static size_t ncalls, nanswered;
static struct fake_reply replies[MAX_CALLS];
static size_t nreplies, nused;
static struct store the_store;
/* store_memory: one reading asked at a time, answered P2A_ERR_UNAVAILABLE (no reading) by
 * fake_store_run() or store_free(), outside the scripted calls */
static store_memory_cb memory_cb;
static void *memory_arg;

static void audit_answer(void);

static void memory_answer(void)
{
    store_memory_cb cb = memory_cb;
    memory_cb = NULL;
    if (cb != NULL)
        cb(memory_arg, P2A_ERR_UNAVAILABLE, 0, 0);
}

void store_memory(struct store *st, store_memory_cb cb, void *arg)
{
    (void)st;
    if (memory_cb != NULL)
        abort();
    memory_cb = cb;
    memory_arg = arg;
}

enum { K_DONE, K_REVOKE, K_LIST, K_REVOCATIONS, K_EVAL };

static struct call *record(const char *name, const char *first, int kind, void *arg)
{
    if (ncalls == MAX_CALLS)
        abort();
    struct call *c = &calls[ncalls++];
    memset(c, 0, sizeof(*c));
    strncpy(c->name, name, sizeof(c->name) - 1);
    strncpy(c->first, first ? first : "", sizeof(c->first) - 1);
    c->kind = kind;
    c->arg = arg;
    return c;
}

void fake_store_reply(struct fake_reply r)
{
    if (nreplies == MAX_CALLS)
        abort();
    replies[nreplies++] = r;
}

size_t fake_store_run(void)
{
    size_t done = 0;
    memory_answer();
    audit_answer();
    while (nanswered < ncalls) {
        struct call *c = &calls[nanswered++];
        struct fake_reply r = {.err = P2A_ERR_UNAVAILABLE};
        if (nused < nreplies)
            r = replies[nused++];
        switch (c->kind) {
        case K_DONE:
            c->cb.done(c->arg, r.err);
            break;
        case K_REVOKE:
            c->cb.revoke(c->arg, r.err, r.already, r.revoked_at, r.exp, "");
            break;
        case K_LIST:
            c->cb.list(c->arg, r.err, NULL, 0);
            break;
        case K_REVOCATIONS:
            c->cb.revocations(c->arg, r.err, NULL, 0, 0);
            break;
        default: {
            size_t lens[FAKE_MAX_ITEMS];
            for (size_t i = 0; i < r.n; i++)
                lens[i] = strlen(r.items[i]);
            c->cb.eval(c->arg, r.err, r.err == P2A_OK ? r.items : NULL, lens,
                       r.err == P2A_OK ? r.n : 0);
        }
        }
        done++;
        audit_answer();
    }
    return done;
}

const char *fake_store_call(size_t i, const char **first)
{
    if (i >= ncalls)
        return NULL;
    if (first != NULL)
        *first = calls[i].first;
    return calls[i].name;
}

void fake_store_reset(void)
{
    ncalls = nanswered = nreplies = nused = 0;
}

struct store *store_new(struct event_base *base, const struct p2a_config *cfg, const char *name)
{
    (void)base, (void)cfg, (void)name;
    return &the_store;
}

struct store *store_new_subscriber(struct event_base *base, const struct p2a_config *cfg,
                                   const char *name, const char *channel,
                                   store_message_cb on_message, store_sub_state_cb on_state,
                                   void *arg)
{
    (void)base, (void)cfg, (void)name, (void)channel, (void)on_message, (void)on_state;
    (void)arg;
    return &the_store;
}

void store_free(struct store *st)
{
    (void)st;
    memory_answer();
}

bool store_connected(const struct store *st)
{
    (void)st;
    return true;
}

void store_pat_create(struct store *st, const struct pat_record *r, store_done_cb cb, void *arg)
{
    (void)st;
    record("pat_create", r->jti, K_DONE, arg)->cb.done = cb;
}

void store_pat_create_capped(struct store *st, const struct pat_record *r, int max_active,
                             int per_hour, store_status_cb cb, void *arg)
{
    (void)st, (void)max_active, (void)per_hour;
    /* answered through the store's own parsing of a script's code (store_script.h) */
    record("pat_create_capped", r->jti, K_EVAL,
           store_answer_new(store_parse_status, (union store_answer_cb){.status = cb}, arg))
        ->cb.eval = store_answer;
}

void store_pat_revoke(struct store *st, const char *jti, const char *user_id, int64_t now_ms,
                      store_revoke_cb cb, void *arg)
{
    (void)st, (void)user_id, (void)now_ms;
    record("pat_revoke", jti, K_REVOKE, arg)->cb.revoke = cb;
}

void store_pat_list(struct store *st, const char *user_id, bool include_revoked, store_list_cb cb,
                    void *arg)
{
    (void)st, (void)include_revoked;
    record("pat_list", user_id, K_LIST, arg)->cb.list = cb;
}

void store_revocations_load(struct store *st, int64_t now, store_revocations_cb cb, void *arg)
{
    (void)st, (void)now;
    record("revocations_load", NULL, K_REVOCATIONS, arg)->cb.revocations = cb;
}

void store_revocations_since(struct store *st, uint64_t after, size_t limit,
                             store_revocations_cb cb, void *arg)
{
    (void)st, (void)after, (void)limit;
    record("revocations_since", NULL, K_REVOCATIONS, arg)->cb.revocations = cb;
}

void store_revocations_purge(struct store *st, int64_t now, store_revocations_cb cb, void *arg)
{
    (void)st, (void)now;
    record("revocations_purge", NULL, K_REVOCATIONS, arg)->cb.revocations = cb;
}

void store_last_used(struct store *st, const char *const *jtis, const int64_t *ts, size_t n,
                     store_done_cb cb, void *arg)
{
    (void)st, (void)ts;
    record("last_used", n > 0 ? jtis[0] : NULL, K_DONE, arg)->cb.done = cb;
}

/* The audit trail is not scripted: every query finds no event, answered by the next
 * fake_store_run() without taking a scripted reply. */
static store_audit_list_cb audit_cb[MAX_CALLS];
static void *audit_arg[MAX_CALLS];
static size_t naudit;

void store_audit_list(struct store *st, const struct audit_query *q, store_audit_list_cb cb,
                      void *arg)
{
    (void)st, (void)q;
    if (naudit == MAX_CALLS)
        abort();
    audit_cb[naudit] = cb;
    audit_arg[naudit++] = arg;
}

static void audit_answer(void)
{
    while (naudit > 0) {
        size_t n = naudit;
        naudit = 0;
        for (size_t i = 0; i < n; i++)
            audit_cb[i](audit_arg[i], P2A_OK, NULL, 0, "");
    }
}

void store_eval(struct store *st, const char *script, int nkeys, const char *const *args,
                size_t nargs, store_eval_cb cb, void *arg)
{
    (void)st, (void)script, (void)nkeys;
    record("eval", nargs > 0 ? args[0] : NULL, K_EVAL, arg)->cb.eval = cb;
}

void store_eval_durable(struct store *st, const char *script, int nkeys, const char *const *args,
                        size_t nargs, store_eval_cb cb, void *arg)
{
    (void)st, (void)script, (void)nkeys;
    record("eval_durable", nargs > 0 ? args[0] : NULL, K_EVAL, arg)->cb.eval = cb;
}
