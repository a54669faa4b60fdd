/* flusher.c -- writing the workers' last-used marks to Redis in batches (see flusher.h).
 * Threading: the main loop; the counters are atomics read by the facade's thread. */
#include "flusher.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "lastused.h"
#include "log.h"
#include "loop_thread.h"
#include "mbuf.h"
#include "store.h"
#include "token.h"
#include "xalloc.h"

#define FLUSH_CHUNK 1000

struct flusher {
    struct event_base *base;
    struct store *store;
    struct lastused_inbox *inbox;
    struct lastused *pending; /* marks drained from workers, not yet written */
    size_t in_flight;
    bool last; /* the shutdown's flush: the loop exits when nothing is in flight */
    struct event *timer;
    atomic_uint_least64_t ok, failed, written; /* read by the facade's thread */
};

struct flush_batch {
    struct flusher *f;
    size_t n;
    char (*jti)[JTI_MAX_LEN + 1];
    int64_t *ts;
    const char **ptrs;
};

static void batch_free(struct flush_batch *b)
{
    free(b->jti);
    free(b->ts);
    free(b->ptrs);
    free(b);
}

static void on_flushed(void *arg, p2a_err err)
{
    struct flush_batch *b = arg;
    struct flusher *f = b->f;
    if (err != P2A_OK) {
        atomic_fetch_add_explicit(&f->failed, 1, memory_order_relaxed);
        log_warn("last_used.flush_failed",
                 "last-used flush of %zu tokens failed; retrying next interval", b->n);
        for (size_t i = 0; i < b->n; i++)
            lastused_mark(f->pending, b->jti[i], b->ts[i]);
    } else {
        atomic_fetch_add_explicit(&f->ok, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&f->written, b->n, memory_order_relaxed);
        log_debug("last_used.flushed", "last-used flush: %zu tokens", b->n);
    }
    f->in_flight--;
    batch_free(b);
    if (f->last && f->in_flight == 0)
        event_base_loopexit(f->base, NULL);
}

static void batch_send(struct flush_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        b->ptrs[i] = b->jti[i];
    b->f->in_flight++;
    store_last_used(b->f->store, b->ptrs, b->ts, b->n, on_flushed, b);
}

static struct flush_batch *batch_new(struct flusher *f)
{
    struct flush_batch *b = xcalloc(1, sizeof(*b));
    b->f = f;
    b->jti = xcalloc(FLUSH_CHUNK, sizeof(*b->jti));
    b->ts = xcalloc(FLUSH_CHUNK, sizeof(*b->ts));
    b->ptrs = xcalloc(FLUSH_CHUNK, sizeof(*b->ptrs));
    return b;
}

static void add_mark(void *arg, const char *jti, int64_t ts)
{
    struct flush_batch **bp = arg;
    struct flush_batch *b = *bp;
    if (b->n == FLUSH_CHUNK) {
        struct flusher *f = b->f;
        batch_send(b);
        *bp = b = batch_new(f);
    }
    snprintf(b->jti[b->n], sizeof(b->jti[b->n]), "%s", jti);
    b->ts[b->n++] = ts;
}

static void flush(struct flusher *f)
{
    lastused_inbox_take(f->inbox, f->pending);
    if (lastused_count(f->pending) == 0)
        return;
    struct lastused *taken = lastused_new();
    lastused_merge(taken, f->pending);
    struct flush_batch *b = batch_new(f);
    lastused_each(taken, add_mark, &b);
    lastused_free(taken);
    if (b->n > 0)
        batch_send(b);
    else
        batch_free(b);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    flush(arg);
}

struct flusher *flusher_new(struct event_base *base, struct store *store,
                            struct lastused_inbox *inbox, int interval_s)
{
    struct flusher *f = xcalloc(1, sizeof(*f));
    f->base = base;
    f->store = store;
    f->inbox = inbox;
    f->pending = lastused_new();
    f->timer = loop_timer(base, interval_s, true, on_timer, f);
    return f;
}

void flusher_add(struct flusher *f, struct lastused *marks)
{
    lastused_merge(f->pending, marks);
}

bool flusher_last(struct flusher *f)
{
    f->last = true;
    flush(f);
    return f->in_flight > 0;
}

void flusher_metrics(const struct flusher *f, struct mbuf *out)
{
    mbuf_printf(out,
                "# HELP p2a_last_used_flushes_total Batched writes of last-used times, by "
                "result.\n"
                "# TYPE p2a_last_used_flushes_total counter\n"
                "p2a_last_used_flushes_total{result=\"ok\"} %llu\n"
                "p2a_last_used_flushes_total{result=\"error\"} %llu\n"
                "# HELP p2a_last_used_marks_written_total Tokens whose last-used time was "
                "written.\n"
                "# TYPE p2a_last_used_marks_written_total counter\n"
                "p2a_last_used_marks_written_total %llu\n",
                (unsigned long long)atomic_load_explicit(&f->ok, memory_order_relaxed),
                (unsigned long long)atomic_load_explicit(&f->failed, memory_order_relaxed),
                (unsigned long long)atomic_load_explicit(&f->written, memory_order_relaxed));
}

void flusher_free(struct flusher *f)
{
    if (f == NULL)
        return;
    if (f->timer != NULL)
        event_free(f->timer);
    lastused_free(f->pending);
    free(f);
}
