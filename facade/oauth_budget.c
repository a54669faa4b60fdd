/* oauth_budget.c -- the reserve of Redis memory kept for what must never fail.
 *
 * With maxmemory and noeviction (deploy/README.md), a Redis that is full refuses every write:
 * a revocation then fails like any other. Anonymous requests (registration, a sign-in's
 * counters, a client assertion's jti) are what anyone on the internet can make us write, so
 * they stop first: once maxmemory - used_memory is below PIPE2_AUTH_REDIS_RESERVE_MB, they are
 * refused (503, oauth_budget_refuse) while revocations, issuance and refresh go on into the
 * reserve.
 *
 * Scripts cannot read INFO, and reading it per request would double the round trips: a timer
 * on the facade's loop asks INFO memory every BUDGET_POLL_MS and keeps the answer. Between two
 * readings the bytes this facade let anonymous requests write are added to the last reading
 * (oauth_budget_allows' bytes), so a burst cannot outrun the timer by more than what other
 * replicas write in one period. A reading older than BUDGET_STALE_MS (Redis away or slow) is
 * no reading: nothing is refused on its account, since Redis itself refuses what it cannot
 * take, and the store fails anonymous writes as it fails the rest.
 *
 * Everything here runs on the facade's loop; the reading is atomic only for the metrics.
 */
#include "oauth_internal.h"

#include <stdatomic.h>

#include <event2/event.h>

#define BUDGET_POLL_MS 1000
#define BUDGET_STALE_MS 5000

struct oauth_budget {
    struct oauth_http *o; /* NULL once the module is freed while a reading is in flight */
    struct event *timer;
    bool asking;
    int64_t spent;        /* bytes let in since the last reading */
    int64_t read_at_ms;   /* when the last reading arrived; 0: none yet */
    _Atomic int64_t used; /* used_memory and maxmemory of the last reading */
    _Atomic int64_t max;
    struct log_limit log; /* refusals: a line a second at most */
};

static void on_memory(void *arg, p2a_err err, int64_t used, int64_t max)
{
    struct oauth_budget *b = arg;
    b->asking = false;
    if (b->o == NULL) {
        free(b);
        return;
    }
    if (err != P2A_OK)
        return;
    atomic_store(&b->used, used);
    atomic_store(&b->max, max);
    b->spent = 0;
    b->read_at_ms = clock_now_ms();
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct oauth_budget *b = arg;
    if (b->asking)
        return; /* the last question is still queued behind other commands */
    b->asking = true;
    store_memory(b->o->h.store, on_memory, b);
}

void oauth_budget_start(struct oauth_http *o)
{
    struct oauth_budget *b = xcalloc(1, sizeof(*b));
    b->o = o;
    b->timer = event_new(o->base, -1, EV_PERSIST, on_timer, b);
    P2A_ASSERT(b->timer != NULL);
    struct timeval tv = {BUDGET_POLL_MS / 1000, (BUDGET_POLL_MS % 1000) * 1000};
    event_add(b->timer, &tv);
    o->budget = b;
    on_timer(-1, 0, b); /* a first reading at once */
}

void oauth_budget_stop(struct oauth_http *o)
{
    struct oauth_budget *b = o->budget;
    if (b == NULL)
        return;
    o->budget = NULL;
    event_free(b->timer);
    if (b->asking)
        b->o = NULL; /* on_memory frees it */
    else
        free(b);
}

bool oauth_budget_allows(struct oauth_http *o, size_t bytes)
{
    struct oauth_budget *b = o->budget;
    int64_t reserve = (int64_t)o->cfg->redis_reserve_mb * 1024 * 1024;
    int64_t max = atomic_load(&b->max);
    if (reserve == 0 || max == 0 || b->read_at_ms == 0 ||
        clock_now_ms() - b->read_at_ms > BUDGET_STALE_MS)
        return true;
    if (atomic_load(&b->used) + b->spent + (int64_t)bytes > max - reserve)
        return false;
    b->spent += (int64_t)bytes;
    return true;
}

void oauth_budget_refuse(struct oreq *r, bool page)
{
    unsigned long long passed;
    if (log_every_second(&r->o->budget->log, &passed))
        log_warn("oauth.reserve",
                 "Redis has less than PIPE2_AUTH_REDIS_RESERVE_MB free: anonymous writes refused "
                 "(%s from %s; %llu more since the last line); revocations, issuance and refresh "
                 "go on",
                 r->ep->name, r->addr, passed);
    oh_add_header(r->http, "Retry-After", "60");
    if (page)
        oreq_page_error(r, 503, "The service is busy",
                        "The service cannot take new sign-ins right now. Try again in a minute.");
    else
        oreq_error(r, 503, "temporarily_unavailable",
                   "the service cannot take this request right now; try again in a minute");
}

void oauth_budget_metrics(const struct oauth_http *o, struct mbuf *out)
{
    const struct oauth_budget *b = o->budget;
    if (b == NULL)
        return;
    mbuf_printf(out,
                "# HELP p2a_redis_used_bytes Redis used_memory at the facade's last reading.\n"
                "# TYPE p2a_redis_used_bytes gauge\np2a_redis_used_bytes %lld\n"
                "# HELP p2a_redis_max_bytes Redis maxmemory at the facade's last reading (0: "
                "none).\n# TYPE p2a_redis_max_bytes gauge\np2a_redis_max_bytes %lld\n",
                (long long)atomic_load(&b->used), (long long)atomic_load(&b->max));
}
