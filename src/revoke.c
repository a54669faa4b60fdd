/* revoke.c -- the revocation set (see revoke.h).
 *
 * DESIGN
 * ------
 * A jtitab of jti -> exp behind a pthread rwlock: every Introspect takes the read lock for
 * one probe; revocations and the sweep take the write lock. Sweeping keeps only entries
 * whose token has not expired, in a table sized to them, so memory follows the number of
 * revoked tokens that could still be presented.
 *
 * Freshness and statistics are atomics beside the table, so the hot path reads the sync
 * time without the lock.
 *
 * Threading: any thread.
 */
#include "revoke.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "xalloc.h"

struct revoke_set {
    pthread_rwlock_t lock;
    struct jtitab tab;
    int64_t staleness_ms;
    atomic_llong synced_ms; /* monotonic ms of the last sync; 0: never */
    atomic_ullong seq;
    atomic_ullong applied[REVOKE_PATH_COUNT];
    atomic_llong last_lag_ms;
};

#define MIN_CAP 1024

struct revoke_set *revoke_new(int64_t staleness_ms)
{
    struct revoke_set *set = xcalloc(1, sizeof(*set));
    P2A_ASSERT(pthread_rwlock_init(&set->lock, NULL) == 0);
    jtitab_init(&set->tab, MIN_CAP);
    set->staleness_ms = staleness_ms;
    atomic_store(&set->last_lag_ms, -1);
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

bool revoke_add(struct revoke_set *set, const char *jti, int64_t exp, enum revoke_path path)
{
    pthread_rwlock_wrlock(&set->lock);
    bool fresh = jtitab_put_max(&set->tab, jti, exp, SIZE_MAX);
    pthread_rwlock_unlock(&set->lock);
    if (fresh)
        atomic_fetch_add(&set->applied[path], 1);
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

void revoke_synced(struct revoke_set *set, int64_t mono_ms, uint64_t seq)
{
    if (mono_ms < 1)
        mono_ms = 1;
    if (mono_ms > atomic_load(&set->synced_ms))
        atomic_store(&set->synced_ms, mono_ms);
    atomic_store(&set->seq, seq);
}

enum revoke_state revoke_usable(struct revoke_set *set, int64_t now_mono_ms, int64_t *age_ms)
{
    int64_t synced = atomic_load(&set->synced_ms);
    if (synced == 0) {
        *age_ms = -1;
        return REVOKE_NOT_LOADED;
    }
    *age_ms = now_mono_ms - synced;
    return *age_ms > set->staleness_ms ? REVOKE_STALE : REVOKE_USABLE;
}

void revoke_note_lag(struct revoke_set *set, int64_t lag_ms)
{
    atomic_store(&set->last_lag_ms, lag_ms);
}

void revoke_get_stats(struct revoke_set *set, int64_t now_mono_ms, struct revoke_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->entries = revoke_count(set);
    out->bytes = revoke_memory(set);
    for (int i = 0; i < REVOKE_PATH_COUNT; i++)
        out->applied[i] = atomic_load(&set->applied[i]);
    revoke_usable(set, now_mono_ms, &out->view_age_ms);
    out->last_lag_ms = atomic_load(&set->last_lag_ms);
    out->seq = atomic_load(&set->seq);
}
