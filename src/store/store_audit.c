/* store_audit.c -- the audit trail's scripts and its writer (see store_audit.h). */
#include "store_audit.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mbuf.h"
#include "store_internal.h"
#include "store_lua.h"
#include "xalloc.h"

#define KEY_EV "p2a:{audit}:ev"
#define KEY_NAMED "p2a:{audit}:named"
#define KEY_ANON "p2a:{audit}:anon"
/* a person's and a client's index: lua/audit_write.lua names them too, as text */
#define KEY_USER "p2a:{audit}:u:"
#define KEY_CLIENT "p2a:{audit}:c:"
#define SEND_MAX 256  /* writes in flight at once */
#define TAKE_MAX 1024 /* events taken from the queue a tick */
_Static_assert(TAKE_MAX >= AUDIT_AGG_MAX + 1, "a minute's aggregates fit the buffer");

/* ---- writing ---------------------------------------------------------------------------- */

struct pending {
    char id[AUDIT_ID_LEN];
    char *json;
    char *user_key, *client_key; /* NULL: none */
    bool anon;
    bool in_flight, done;
};

struct audit_writer {
    struct store *st;
    const struct p2a_config *cfg;
    struct pending *v; /* the backlog, oldest first */
    size_t n, cap;
    size_t in_flight;
    bool round_failed; /* a write of the round in flight failed: the rest wait for a tick */
    size_t round_n;    /* the round's entries: the backlog's first ones */
    void (*on_idle)(void *arg);
    void *idle_arg;
    struct audit_event *taken; /* TAKE_MAX */
    struct log_limit lost_log;
    uint64_t lost_seen;
    /* read by the facade's thread for /metrics */
    atomic_uint_least64_t written, write_errors;
    atomic_size_t backlog;
};

struct audit_writer *audit_writer_new(struct store *st, const struct p2a_config *cfg)
{
    /* the script removes a gone event from its indexes by these names */
    P2A_ASSERT(strstr(store_lua_audit_write, "'" KEY_USER "'") != NULL &&
               strstr(store_lua_audit_write, "'" KEY_CLIENT "'") != NULL);
    struct audit_writer *w = xcalloc(1, sizeof(*w));
    w->st = st;
    w->cfg = cfg;
    w->taken = xcalloc(TAKE_MAX, sizeof(*w->taken));
    return w;
}

static void pending_free(struct pending *p)
{
    free(p->json);
    free(p->user_key);
    free(p->client_key);
}

void audit_writer_free(struct audit_writer *w)
{
    if (w == NULL)
        return;
    P2A_ASSERT(w->in_flight == 0);
    for (size_t i = 0; i < w->n; i++)
        pending_free(&w->v[i]);
    free(w->v);
    free(w->taken);
    free(w);
}

static char *key_for(const char *prefix, const char *id)
{
    if (id[0] == '\0')
        return NULL;
    size_t n = strlen(prefix) + strlen(id) + 1;
    char *k = xmalloc(n);
    snprintf(k, n, "%s%s", prefix, id);
    return k;
}

/* The line for log shippers, then the backlog for Redis (its oldest go when it is full). */
static void admit(void *arg, const struct audit_event *ev)
{
    struct audit_writer *w = arg;
    char *line = audit_cloudevent(ev, w->cfg->issuer);
    size_t len = strlen(line);
    line[len] = '\n'; /* one write: lines from this thread only, never interleaved */
    ssize_t r = write(STDOUT_FILENO, line, len + 1);
    (void)r; /* a closed stdout loses the stream, never the trail in Redis */
    free(line);
    if (w->n == AUDIT_BACKLOG_MAX) {
        size_t drop = w->in_flight > 0 ? w->round_n : 0; /* the oldest not in the round */
        if (drop == w->n) {
            audit_count_lost(1);
            return;
        }
        pending_free(&w->v[drop]);
        memmove(&w->v[drop], &w->v[drop + 1], (w->n - drop - 1) * sizeof(w->v[0]));
        w->n--;
        audit_count_lost(1);
    }
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 256;
        w->v = xrealloc(w->v, w->cap * sizeof(w->v[0]));
    }
    struct pending *p = &w->v[w->n++];
    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%s", ev->id);
    p->json = audit_event_json(ev);
    p->anon = audit_anonymous(ev);
    p->user_key = key_for(KEY_USER, ev->user_id);
    /* an anonymous event names no client index: anyone may register clients, and each
     * index would be a key of its own; a client's query reads the anonymous index too */
    p->client_key = p->anon ? NULL : key_for(KEY_CLIENT, ev->client_id);
}

/* Drops the entries written, keeping the order of the rest. */
static void compact(struct audit_writer *w)
{
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (w->v[i].done)
            pending_free(&w->v[i]);
        else
            w->v[k++] = w->v[i];
    }
    w->n = k;
    atomic_store_explicit(&w->backlog, w->n, memory_order_relaxed);
}

/* A write in flight: the round's entries are the backlog's first ones, and stay where they
 * are until the round is over (admit() drops none of them, compact() waits for the round). */
struct write_op {
    struct audit_writer *w;
    size_t at;
};

static void send_backlog(struct audit_writer *w);

static void on_written(struct op *op, redisReply *r)
{
    struct write_op *wo = op->arg;
    struct audit_writer *w = wo->w;
    bool ok = store_reply_ok(r);
    struct pending *p = &w->v[wo->at];
    P2A_ASSERT(wo->at < w->n && p->in_flight);
    p->in_flight = false;
    p->done = ok;
    w->round_failed |= !ok;
    atomic_fetch_add_explicit(ok ? &w->written : &w->write_errors, 1, memory_order_relaxed);
    free(wo);
    if (--w->in_flight > 0)
        return;
    compact(w);
    if (!w->round_failed && w->n > 0) {
        send_backlog(w); /* a burst goes out at Redis's pace; after a failure, the next tick */
        return;
    }
    if (w->on_idle != NULL)
        w->on_idle(w->idle_arg);
}

static void send_one(struct audit_writer *w, size_t at, const char *cutoff, const char *cap,
                     const char *acap, const char *keep_ms)
{
    struct pending *p = &w->v[at];
    const char *argv[3 + 4 + 6];
    int argc = 0, nkeys = 2;
    argv[argc++] = "EVAL";
    argv[argc++] = store_lua_audit_write;
    argc++; /* nkeys, below */
    argv[argc++] = KEY_EV;
    argv[argc++] = p->anon ? KEY_ANON : KEY_NAMED;
    if (p->user_key != NULL)
        argv[argc++] = p->user_key, nkeys++;
    if (p->client_key != NULL)
        argv[argc++] = p->client_key, nkeys++;
    char nk[4];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[2] = nk;
    argv[argc++] = p->id;
    argv[argc++] = p->json;
    argv[argc++] = cutoff;
    argv[argc++] = p->anon ? acap : cap;
    argv[argc++] = cap;
    argv[argc++] = keep_ms;
    struct write_op *wo = xcalloc(1, sizeof(*wo));
    wo->w = w;
    wo->at = at;
    p->in_flight = true;
    w->in_flight++;
    store_send_op(w->st, store_op_new(on_written, wo), argc, argv, NULL);
}

static void send_backlog(struct audit_writer *w)
{
    if (w->in_flight > 0 || w->n == 0)
        return; /* one round at a time: its replies come before the next is sent */
    char cutoff[24], cap[24], acap[24], keep_ms[24];
    long long now_us = audit_now_us(),
              keep_us = (long long)w->cfg->audit_retention_days * 86400 * 1000000;
    snprintf(cutoff, sizeof(cutoff), "%016lld", now_us - keep_us);
    snprintf(keep_ms, sizeof(keep_ms), "%lld", keep_us / 1000);
    snprintf(cap, sizeof(cap), "%d", w->cfg->audit_max_events);
    snprintf(acap, sizeof(acap), "%d", w->cfg->audit_max_events / 10);
    w->round_failed = false;
    w->round_n = w->n < SEND_MAX ? w->n : SEND_MAX;
    for (size_t i = 0; i < w->round_n; i++)
        send_one(w, i, cutoff, cap, acap, keep_ms);
}

void audit_writer_tick(struct audit_writer *w, bool final)
{
    size_t n;
    do {
        n = audit_take(w->taken, TAKE_MAX);
        for (size_t i = 0; i < n; i++)
            admit(w, &w->taken[i]);
    } while (n == TAKE_MAX);
    n = audit_take_aggregates(w->taken, audit_now_us(), final);
    for (size_t i = 0; i < n; i++)
        admit(w, &w->taken[i]);
    atomic_store_explicit(&w->backlog, w->n, memory_order_relaxed);
    uint64_t lost = audit_dropped();
    unsigned long long passed = 0;
    if (lost > w->lost_seen && log_every_second(&w->lost_log, &passed)) {
        log_warn("audit.lost",
                 "audit trail: %llu events lost so far (queue or backlog full: "
                 "Redis unreachable?)",
                 (unsigned long long)lost);
        w->lost_seen = lost;
    }
    send_backlog(w);
}

size_t audit_writer_in_flight(const struct audit_writer *w)
{
    return w->in_flight;
}

void audit_writer_on_idle(struct audit_writer *w, void (*fn)(void *arg), void *arg)
{
    w->on_idle = fn;
    w->idle_arg = arg;
}

void audit_writer_metrics(const struct audit_writer *w, struct mbuf *out)
{
    mbuf_printf(out,
                "# HELP p2a_audit_events_written_total Audit events written to Redis.\n"
                "# TYPE p2a_audit_events_written_total counter\n"
                "p2a_audit_events_written_total %llu\n"
                "# HELP p2a_audit_write_errors_total Audit writes that failed (retried).\n"
                "# TYPE p2a_audit_write_errors_total counter\n"
                "p2a_audit_write_errors_total %llu\n"
                "# HELP p2a_audit_events_lost_total Audit events lost: the queue or the backlog "
                "was full.\n"
                "# TYPE p2a_audit_events_lost_total counter\n"
                "p2a_audit_events_lost_total %llu\n"
                "# HELP p2a_audit_backlog Audit events waiting for Redis.\n"
                "# TYPE p2a_audit_backlog gauge\n"
                "p2a_audit_backlog %zu\n",
                (unsigned long long)atomic_load_explicit(&w->written, memory_order_relaxed),
                (unsigned long long)atomic_load_explicit(&w->write_errors, memory_order_relaxed),
                (unsigned long long)audit_dropped(),
                atomic_load_explicit(&w->backlog, memory_order_relaxed));
}

/* ---- reading ---------------------------------------------------------------------------- */

struct list_op {
    store_audit_list_cb cb;
    void *arg;
};

static void on_listed(struct op *op, redisReply *r)
{
    struct list_op *lo = op->arg;
    if (!store_reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        lo->cb(lo->arg, P2A_ERR_UNAVAILABLE, NULL, 0, "");
        free(lo);
        return;
    }
    size_t n = r->elements - 1, k = 0;
    struct audit_event *evs = xcalloc(n ? n : 1, sizeof(*evs));
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = r->element[i + 1];
        if (e->type == REDIS_REPLY_STRING && audit_event_parse(e->str, e->len, &evs[k]))
            k++;
    }
    lo->cb(lo->arg, P2A_OK, evs, k, r->element[0]->str);
    free(evs);
    free(lo);
}

void store_audit_list(struct store *st, const struct audit_query *q, store_audit_list_cb cb,
                      void *arg)
{
    char hi[AUDIT_ID_LEN + 2] = "+", lo[24] = "-", page[12], budget[12];
    if (q->until_ms > 0)
        snprintf(hi, sizeof(hi), "(%016lld", (long long)(q->until_ms + 1) * 1000);
    if (q->page_token != NULL && q->page_token[0] != '\0' &&
        (hi[0] == '+' || strcmp(q->page_token, hi + 1) < 0))
        snprintf(hi, sizeof(hi), "(%s", q->page_token);
    if (q->since_ms > 0)
        snprintf(lo, sizeof(lo), "[%016lld", (long long)q->since_ms * 1000);
    snprintf(page, sizeof(page), "%d", q->page_size > 0 ? q->page_size : 50);
    snprintf(budget, sizeof(budget), "%d", AUDIT_SCAN_BUDGET);
    struct mbuf types = {0};
    for (size_t i = 0; i < q->ntypes; i++)
        mbuf_printf(&types, "%s%s", i ? " " : "", q->types[i]);
    const char *user = q->user_id != NULL ? q->user_id : "";
    const char *client = q->client_id != NULL ? q->client_id : "";
    char *k1 = NULL;
    const char *argv[3 + 3 + 7];
    int argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = store_lua_audit_list;
    argv[argc++] = "3";
    argv[argc++] = KEY_EV;
    if (user[0] != '\0') {
        k1 = key_for(KEY_USER, user);
        argv[2] = "2";
        argv[argc++] = k1;
    } else if (client[0] != '\0') {
        k1 = key_for(KEY_CLIENT, client);
        argv[argc++] = k1;
        argv[argc++] = KEY_ANON;
    } else {
        argv[argc++] = KEY_NAMED;
        argv[argc++] = KEY_ANON;
    }
    argv[argc++] = hi;
    argv[argc++] = lo;
    argv[argc++] = page;
    argv[argc++] = types.s != NULL ? types.s : "";
    argv[argc++] = client;
    argv[argc++] = user;
    argv[argc++] = budget;
    struct list_op *op = xcalloc(1, sizeof(*op));
    op->cb = cb;
    op->arg = arg;
    store_send_op(st, store_op_new(on_listed, op), argc, argv, NULL);
    free(k1);
    mbuf_free(&types);
}
