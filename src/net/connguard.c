/* connguard.c -- see connguard.h.
 *
 * The per-address counts are a small chained hash table under one mutex: it is touched once
 * per connection opened or closed, never per request.
 */
#include "connguard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "digest.h"
#include "xalloc.h"

#define BUCKETS 1024
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 1000

struct addr_count {
    struct addr_count *next;
    size_t n;
    char addr[NETADDR_MAX];
};

struct connguard {
    const char *port;
    size_t max_total, max_per_addr;
    const struct p2a_cidr *exempt;
    size_t nexempt;
    pthread_mutex_t lock;
    size_t open;
    atomic_uint_least64_t refused;
    struct log_limit log;
    struct addr_count *buckets[BUCKETS];
};

static unsigned hash(const char *s)
{
    return digest_fnv1a(s) % BUCKETS;
}

struct connguard *connguard_new(const char *port, size_t max_total, size_t max_per_addr,
                                const struct p2a_cidr *exempt, size_t nexempt)
{
    struct connguard *g = xcalloc(1, sizeof(*g));
    g->port = port;
    g->max_total = max_total;
    g->max_per_addr = max_per_addr;
    g->exempt = exempt;
    g->nexempt = nexempt;
    P2A_ASSERT(pthread_mutex_init(&g->lock, NULL) == 0);
    return g;
}

void connguard_free(struct connguard *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < BUCKETS; i++)
        for (struct addr_count *e = g->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    pthread_mutex_destroy(&g->lock);
    free(g);
}

void connguard_peer(const struct sockaddr *sa, char out[NETADDR_MAX])
{
    char ip[NETADDR_MAX] = "unknown";
    if (sa != NULL && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, ip,
                  sizeof(ip));
    else if (sa != NULL && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, ip,
                  sizeof(ip));
    if (!netaddr_canon(ip, out))
        memcpy(out, ip, NETADDR_MAX);
}

bool connguard_admit(struct connguard *g, const char *addr)
{
    const char *why = NULL;
    size_t bound = 0;
    bool exempt = netaddr_in(g->exempt, g->nexempt, addr);
    char key[NETADDR_MAX]; /* an IPv6 client counts by its /64, as the rate limits do */
    netaddr_limit_key(addr, key);
    pthread_mutex_lock(&g->lock);
    struct addr_count **slot = &g->buckets[hash(key)], *e = *slot;
    while (e != NULL && strcmp(e->addr, key) != 0)
        e = e->next;
    if (g->open >= g->max_total) {
        why = "connections in total";
        bound = g->max_total;
    } else if (!exempt && e != NULL && e->n >= g->max_per_addr) {
        why = "connections from one address";
        bound = g->max_per_addr;
    }
    if (why == NULL) {
        if (e == NULL) {
            e = xcalloc(1, sizeof(*e));
            snprintf(e->addr, sizeof(e->addr), "%s", key);
            e->next = *slot;
            *slot = e;
        }
        e->n++;
        g->open++;
    }
    pthread_mutex_unlock(&g->lock);
    if (why == NULL)
        return true;
    atomic_fetch_add_explicit(&g->refused, 1, memory_order_relaxed);
    unsigned long long passed;
    if (log_every_second(&g->log, &passed))
        log_warn("conn.refused",
                 "%s: refused a connection from %s: at the bound of %zu %s "
                 "(%llu more refused since the last line)",
                 g->port, addr, bound, why, passed);
    return false;
}

void connguard_release(struct connguard *g, const char *addr)
{
    char key[NETADDR_MAX];
    netaddr_limit_key(addr, key);
    pthread_mutex_lock(&g->lock);
    struct addr_count **slot = &g->buckets[hash(key)];
    while (*slot != NULL && strcmp((*slot)->addr, key) != 0)
        slot = &(*slot)->next;
    struct addr_count *e = *slot;
    if (e != NULL && --e->n == 0) {
        *slot = e->next;
        free(e);
    }
    if (e != NULL)
        g->open--;
    pthread_mutex_unlock(&g->lock);
}

size_t connguard_open(struct connguard *g)
{
    pthread_mutex_lock(&g->lock);
    size_t n = g->open;
    pthread_mutex_unlock(&g->lock);
    return n;
}

uint64_t connguard_refused(struct connguard *g)
{
    return atomic_load_explicit(&g->refused, memory_order_relaxed);
}

size_t connguard_default_max(int div)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 16384;
    size_t n = (size_t)rl.rlim_cur / (size_t)div;
    return n > 16 ? n : 16;
}

/* ---- accept_guard ------------------------------------------------------------------------ */

static int reserve_open(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct accept_guard *a = arg;
    if (a->reserve_fd < 0)
        a->reserve_fd = reserve_open();
    evconnlistener_enable(
        a->listener); /* at a bound of its owner's, the next accept pauses it again */
}

void accept_guard_init(struct accept_guard *a, struct event_base *base, struct evconnlistener *l,
                       const char *name)
{
    memset(a, 0, sizeof(*a));
    a->name = name;
    a->listener = l;
    a->reserve_fd = reserve_open();
    a->resume_ev = evtimer_new(base, on_resume, a);
    P2A_ASSERT(a->resume_ev != NULL);
}

void accept_guard_deinit(struct accept_guard *a)
{
    if (a->resume_ev != NULL)
        event_free(a->resume_ev);
    if (a->reserve_fd >= 0)
        close(a->reserve_fd);
    a->resume_ev = NULL;
    a->reserve_fd = -1;
}

void accept_guard_ok(struct accept_guard *a)
{
    a->backoff_ms = 0;
}

void accept_guard_on_error(struct accept_guard *a)
{
    int err = EVUTIL_SOCKET_ERROR();
    bool full = err == EMFILE || err == ENFILE;
    if (full) {
        a->emfile++;
        if (a->reserve_fd >= 0) {
            close(a->reserve_fd);
            a->reserve_fd = -1;
        }
        int fd = accept(evconnlistener_get_fd(a->listener), NULL, NULL);
        if (fd >= 0)
            close(fd);
        a->reserve_fd = reserve_open();
    }
    a->backoff_ms = a->backoff_ms == 0 ? BACKOFF_MIN_MS : a->backoff_ms * 2;
    if (a->backoff_ms > BACKOFF_MAX_MS)
        a->backoff_ms = BACKOFF_MAX_MS;
    evconnlistener_disable(a->listener);
    struct timeval tv = {a->backoff_ms / 1000, (a->backoff_ms % 1000) * 1000};
    evtimer_add(a->resume_ev, &tv);
    unsigned long long passed;
    if (log_every_second(&a->log, &passed))
        log_warn("conn.accept_failed",
                 "%s: accept failed (%s)%s; pausing %d ms (%llu more "
                 "since the last line)",
                 a->name, evutil_socket_error_to_string(err),
                 full ? ": descriptors exhausted, newest connection closed" : "", a->backoff_ms,
                 passed);
}
