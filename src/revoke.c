/* revoke.c -- the revocation set (see revoke.h).
 *
 * DESIGN
 * ------
 * Open addressing with linear probing over a power-of-two table of 40-byte entries (the
 * jti inline, NUL-padded, and its exp), kept at most half full. An empty jti marks a free
 * slot. Lookups hash the jti (FNV-1a) and probe; nothing is allocated on the read path.
 * Sweeping rebuilds the table from the live entries, which also shrinks it: simpler than
 * deleting in place, and it runs once a minute, not per request.
 *
 * Threading: any thread. A pthread rwlock guards the table; readiness is an atomic.
 */
#include "revoke.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "xalloc.h"

struct entry {
    char jti[REVOKE_MAX_JTI + 1];
    int64_t exp;
};

struct revoke_set {
    pthread_rwlock_t lock;
    struct entry *table;
    size_t cap; /* power of two */
    size_t n;
    atomic_bool ready;
};

#define MIN_CAP 1024

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct revoke_set *revoke_new(void)
{
    struct revoke_set *set = xcalloc(1, sizeof(*set));
    P2A_ASSERT(pthread_rwlock_init(&set->lock, NULL) == 0);
    set->cap = MIN_CAP;
    set->table = xcalloc(set->cap, sizeof(struct entry));
    return set;
}

void revoke_free(struct revoke_set *set)
{
    if (set == NULL)
        return;
    pthread_rwlock_destroy(&set->lock);
    free(set->table);
    free(set);
}

static struct entry *find_slot(struct entry *table, size_t cap, const char *jti)
{
    size_t mask = cap - 1;
    for (size_t i = hash(jti) & mask;; i = (i + 1) & mask) {
        if (table[i].jti[0] == '\0' || strcmp(table[i].jti, jti) == 0)
            return &table[i];
    }
}

static void rehash(struct revoke_set *set, size_t cap, int64_t drop_before)
{
    struct entry *t = xcalloc(cap, sizeof(struct entry));
    size_t n = 0;
    for (size_t i = 0; i < set->cap; i++) {
        const struct entry *e = &set->table[i];
        if (e->jti[0] == '\0' || e->exp <= drop_before)
            continue;
        *find_slot(t, cap, e->jti) = *e;
        n++;
    }
    free(set->table);
    set->table = t;
    set->cap = cap;
    set->n = n;
}

bool revoke_add(struct revoke_set *set, const char *jti, int64_t exp)
{
    size_t len = strlen(jti);
    if (len == 0 || len > REVOKE_MAX_JTI)
        return false;
    pthread_rwlock_wrlock(&set->lock);
    if ((set->n + 1) * 2 > set->cap)
        rehash(set, set->cap * 2, INT64_MIN);
    struct entry *e = find_slot(set->table, set->cap, jti);
    bool fresh = e->jti[0] == '\0';
    if (fresh) {
        memcpy(e->jti, jti, len + 1);
        set->n++;
    }
    if (exp > e->exp)
        e->exp = exp;
    pthread_rwlock_unlock(&set->lock);
    return fresh;
}

bool revoke_contains(struct revoke_set *set, const char *jti)
{
    if (strlen(jti) > REVOKE_MAX_JTI)
        return false;
    pthread_rwlock_rdlock(&set->lock);
    bool hit = find_slot(set->table, set->cap, jti)->jti[0] != '\0';
    pthread_rwlock_unlock(&set->lock);
    return hit;
}

size_t revoke_sweep(struct revoke_set *set, int64_t now)
{
    pthread_rwlock_wrlock(&set->lock);
    size_t before = set->n, live = 0;
    for (size_t i = 0; i < set->cap; i++)
        if (set->table[i].jti[0] != '\0' && set->table[i].exp > now)
            live++;
    /* the smallest table that keeps the survivors at most a quarter full */
    size_t cap = MIN_CAP;
    while (cap < live * 4)
        cap *= 2;
    rehash(set, cap, now);
    size_t dropped = before - set->n;
    pthread_rwlock_unlock(&set->lock);
    return dropped;
}

size_t revoke_count(struct revoke_set *set)
{
    pthread_rwlock_rdlock(&set->lock);
    size_t n = set->n;
    pthread_rwlock_unlock(&set->lock);
    return n;
}

size_t revoke_memory(struct revoke_set *set)
{
    pthread_rwlock_rdlock(&set->lock);
    size_t bytes = sizeof(*set) + set->cap * sizeof(struct entry);
    pthread_rwlock_unlock(&set->lock);
    return bytes;
}

void revoke_set_ready(struct revoke_set *set, bool ready)
{
    atomic_store(&set->ready, ready);
}

bool revoke_ready(struct revoke_set *set)
{
    return atomic_load(&set->ready);
}
