/* revoke.c -- the revocation set (see revoke.h).
 *
 * DESIGN
 * ------
 * A jtitab of jti -> exp behind a pthread rwlock: every Introspect takes the read lock for
 * one probe; revocations and the sweep take the write lock. Sweeping keeps only entries
 * whose token has not expired, in a table sized to them, so memory follows the number of
 * revoked tokens that could still be presented.
 *
 * Threading: any thread. Readiness is an atomic flag, set once the set was loaded.
 */
#include "revoke.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "jtitab.h"
#include "xalloc.h"

struct revoke_set {
    pthread_rwlock_t lock;
    struct jtitab tab;
    atomic_bool ready;
};

#define MIN_CAP 1024

struct revoke_set *revoke_new(void)
{
    struct revoke_set *set = xcalloc(1, sizeof(*set));
    P2A_ASSERT(pthread_rwlock_init(&set->lock, NULL) == 0);
    jtitab_init(&set->tab, MIN_CAP);
    return set;
}

void revoke_free(struct revoke_set *set)
{
    if (set == NULL)
        return;
    pthread_rwlock_destroy(&set->lock);
    jtitab_deinit(&set->tab);
    free(set);
}

bool revoke_add(struct revoke_set *set, const char *jti, int64_t exp)
{
    pthread_rwlock_wrlock(&set->lock);
    bool fresh = jtitab_put_max(&set->tab, jti, exp, SIZE_MAX);
    pthread_rwlock_unlock(&set->lock);
    return fresh;
}

bool revoke_contains(struct revoke_set *set, const char *jti)
{
    pthread_rwlock_rdlock(&set->lock);
    bool hit = jtitab_find(&set->tab, jti) != NULL;
    pthread_rwlock_unlock(&set->lock);
    return hit;
}

size_t revoke_sweep(struct revoke_set *set, int64_t now)
{
    pthread_rwlock_wrlock(&set->lock);
    size_t dropped = jtitab_prune(&set->tab, now);
    pthread_rwlock_unlock(&set->lock);
    return dropped;
}

size_t revoke_count(struct revoke_set *set)
{
    pthread_rwlock_rdlock(&set->lock);
    size_t n = set->tab.n;
    pthread_rwlock_unlock(&set->lock);
    return n;
}

size_t revoke_memory(struct revoke_set *set)
{
    pthread_rwlock_rdlock(&set->lock);
    size_t bytes = sizeof(*set) + jtitab_bytes(&set->tab) - sizeof(set->tab);
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
