/* revoke.c -- the revocation set (see revoke.h).
 *
 * DESIGN
 * ------
 * Every Introspect reads the set, so readers take no lock and write no shared cache line.
 * The set is an open-addressing table (linear probing, at most half full) of slots that are
 * filled once and never changed while that table is current: a writer copies jti and exp
 * into an empty slot, then publishes it by storing its 'full' flag with release order; a
 * reader that sees the flag (acquire) sees the whole jti. Growing and sweeping build a new
 * table and publish it with one atomic pointer store.
 *
 * The old table may still be under a reader's probe, so it is retired, not freed, and freed
 * by epoch: a reader announces the epoch it started in, in a slot of its own (one cache line
 * each), for the length of its probe; a table retired at epoch R is freed once no reader
 * announces an epoch <= R. Writers (revocations arriving, the sweep) are serialised by a
 * mutex; they are rare next to reads.
 *
 * Threading: any thread. A thread's reader slot is found through a thread-local cache keyed
 * by the set's serial number; past REVOKE_MAX_READERS threads, reads take the writers'
 * mutex instead.
 */
#include "revoke.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "codec.h"
#include "digest.h"
#include "xalloc.h"

#define MIN_CAP 1024
#define REVOKE_MAX_READERS 256

struct rslot {
    atomic_bool full;
    char jti[JTI_MAX_LEN + 1];
    atomic_llong exp; /* written under the mutex; read by readers too (revoke_get) */
};

struct rtable {
    size_t cap; /* power of two */
    size_t n;
    struct rslot v[];
};

struct retired {
    struct rtable *t;
    uint64_t epoch;
    struct retired *next;
};

struct reader {
    _Alignas(64) atomic_uint_least64_t active; /* 0: not reading; else its start epoch */
};

struct revoke_set {
    pthread_mutex_t wlock;
    _Atomic(struct rtable *) cur;
    atomic_uint_least64_t epoch;
    struct retired *retired; /* under wlock */
    atomic_int nreaders;
    unsigned long long serial;
    int64_t staleness_ms;
    atomic_llong synced_ms; /* monotonic ms of the last sync; 0: never */
    atomic_ullong seq;
    atomic_ullong applied[REVOKE_PATH_COUNT];
    atomic_llong last_lag_ms;
    struct reader readers[REVOKE_MAX_READERS];
};

static atomic_ullong next_serial = 1;

static struct rtable *table_new(size_t cap)
{
    struct rtable *t = xcalloc(1, sizeof(*t) + cap * sizeof(struct rslot));
    t->cap = cap;
    return t;
}

/* Writers only: the slot holding jti, or the empty slot where it would go. */
static struct rslot *probe(struct rtable *t, const char *jti)
{
    size_t mask = t->cap - 1;
    for (size_t i = jtitab_hash(jti) & mask;; i = (i + 1) & mask) {
        struct rslot *sl = &t->v[i];
        if (!atomic_load_explicit(&sl->full, memory_order_acquire) || strcmp(sl->jti, jti) == 0)
            return sl;
    }
}

/* Readers: jti's exp in t, 0 when it is not there. The answer is decided on the one look at
 * each slot: a slot found empty may be filled (with another jti) a moment later. */
static int64_t lookup(struct rtable *t, const char *jti)
{
    size_t mask = t->cap - 1;
    for (size_t i = jtitab_hash(jti) & mask;; i = (i + 1) & mask) {
        struct rslot *sl = &t->v[i];
        if (!atomic_load_explicit(&sl->full, memory_order_acquire))
            return 0;
        if (strcmp(sl->jti, jti) == 0)
            return atomic_load_explicit(&sl->exp, memory_order_relaxed);
    }
}

/* Writers only. Fills an empty slot and publishes it. */
static void fill(struct rslot *sl, const char *jti, size_t len, int64_t exp)
{
    memcpy(sl->jti, jti, len + 1);
    atomic_store_explicit(&sl->exp, exp, memory_order_relaxed);
    atomic_store_explicit(&sl->full, true, memory_order_release);
}

struct revoke_set *revoke_new(int64_t staleness_ms)
{
    struct revoke_set *set = xcalloc(1, sizeof(*set));
    P2A_ASSERT(pthread_mutex_init(&set->wlock, NULL) == 0);
    atomic_store(&set->cur, table_new(MIN_CAP));
    atomic_store(&set->epoch, 1);
    set->serial = atomic_fetch_add(&next_serial, 1);
    set->staleness_ms = staleness_ms;
    atomic_store(&set->last_lag_ms, -1);
    return set;
}

void revoke_free(struct revoke_set *set)
{
    if (set == NULL)
        return;
    while (set->retired != NULL) {
        struct retired *r = set->retired;
        set->retired = r->next;
        free(r->t);
        free(r);
    }
    free(atomic_load(&set->cur));
    pthread_mutex_destroy(&set->wlock);
    free(set);
}

/* ---- readers -------------------------------------------------------------------------------- */

struct reader_cache {
    unsigned long long serial;
    int slot;
};
static _Thread_local struct reader_cache reader_cache[4];
static _Thread_local unsigned reader_cache_next;

/* This thread's reader slot in set, or -1 when all are taken. */
static int reader_slot(struct revoke_set *set)
{
    for (int i = 0; i < 4; i++)
        if (reader_cache[i].serial == set->serial)
            return reader_cache[i].slot;
    int slot = atomic_fetch_add(&set->nreaders, 1);
    if (slot >= REVOKE_MAX_READERS) {
        atomic_fetch_sub(&set->nreaders, 1);
        return -1;
    }
    struct reader_cache *c = &reader_cache[reader_cache_next++ % 4];
    c->serial = set->serial;
    c->slot = slot;
    return slot;
}

int64_t revoke_get(struct revoke_set *set, const char *jti)
{
    if (strlen(jti) > JTI_MAX_LEN)
        return 0;
    int r = reader_slot(set);
    if (r < 0) {
        pthread_mutex_lock(&set->wlock);
        int64_t exp = lookup(atomic_load(&set->cur), jti);
        pthread_mutex_unlock(&set->wlock);
        return exp;
    }
    atomic_uint_least64_t *active = &set->readers[r].active;
    atomic_store(active, atomic_load(&set->epoch)); /* seq_cst: before the table load */
    struct rtable *t = atomic_load(&set->cur);
    int64_t exp = lookup(t, jti);
    atomic_store_explicit(active, 0, memory_order_release);
    return exp;
}

void revoke_local(struct revoke_set *set, const char *jti, int64_t exp)
{
    revoke_add(set, jti, exp, REVOKE_PATH_LOCAL);
}

bool revoke_contains(struct revoke_set *set, const char *jti)
{
    return revoke_get(set, jti) != 0;
}

/* ---- writers (under wlock) ------------------------------------------------------------------- */

static void reclaim(struct revoke_set *set)
{
    int n = atomic_load(&set->nreaders);
    if (n > REVOKE_MAX_READERS)
        n = REVOKE_MAX_READERS;
    struct retired **pp = &set->retired;
    while (*pp != NULL) {
        struct retired *r = *pp;
        bool in_use = false;
        for (int i = 0; i < n && !in_use; i++) {
            uint64_t a = atomic_load(&set->readers[i].active);
            in_use = a != 0 && a <= r->epoch;
        }
        if (in_use) {
            pp = &r->next;
        } else {
            *pp = r->next;
            free(r->t);
            free(r);
        }
    }
}

/* Builds a table of cap slots holding the entries with exp > floor, publishes it, retires
 * the old one. */
static struct rtable *rebuild(struct revoke_set *set, size_t cap, int64_t floor)
{
    struct rtable *old = atomic_load(&set->cur);
    struct rtable *t = table_new(cap);
    for (size_t i = 0; i < old->cap; i++) {
        struct rslot *sl = &old->v[i];
        int64_t exp = atomic_load_explicit(&sl->exp, memory_order_relaxed);
        if (atomic_load_explicit(&sl->full, memory_order_relaxed) && exp > floor) {
            fill(probe(t, sl->jti), sl->jti, strlen(sl->jti), exp);
            t->n++;
        }
    }
    atomic_store(&set->cur, t);
    struct retired *r = xmalloc(sizeof(*r));
    r->t = old;
    r->epoch = atomic_fetch_add(&set->epoch, 1); /* readers from now on see t */
    r->next = set->retired;
    set->retired = r;
    reclaim(set);
    return t;
}

bool revoke_add(struct revoke_set *set, const char *jti, int64_t exp, enum revoke_path path)
{
    size_t len = strlen(jti);
    if (len == 0 || len > JTI_MAX_LEN)
        return false;
    pthread_mutex_lock(&set->wlock);
    struct rtable *t = atomic_load(&set->cur);
    struct rslot *sl = probe(t, jti);
    bool fresh = !atomic_load_explicit(&sl->full, memory_order_relaxed);
    if (!fresh) {
        if (exp > atomic_load_explicit(&sl->exp, memory_order_relaxed))
            atomic_store_explicit(&sl->exp, exp, memory_order_relaxed);
    } else {
        if ((t->n + 1) * 2 > t->cap) {
            t = rebuild(set, t->cap * 2, INT64_MIN);
            sl = probe(t, jti);
        }
        fill(sl, jti, len, exp);
        t->n++;
    }
    pthread_mutex_unlock(&set->wlock);
    if (fresh)
        atomic_fetch_add(&set->applied[path], 1);
    return fresh;
}

size_t revoke_sweep(struct revoke_set *set, int64_t now)
{
    pthread_mutex_lock(&set->wlock);
    struct rtable *t = atomic_load(&set->cur);
    size_t before = t->n, live = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (atomic_load_explicit(&t->v[i].full, memory_order_relaxed) &&
            atomic_load_explicit(&t->v[i].exp, memory_order_relaxed) > now)
            live++;
    size_t dropped = 0;
    if (live < before) {
        /* the smallest table that keeps the survivors at most a quarter full */
        size_t cap = MIN_CAP;
        while (cap < live * 4)
            cap *= 2;
        dropped = before - rebuild(set, cap, now)->n;
    } else {
        reclaim(set);
    }
    pthread_mutex_unlock(&set->wlock);
    return dropped;
}

size_t revoke_count(struct revoke_set *set)
{
    pthread_mutex_lock(&set->wlock);
    size_t n = atomic_load(&set->cur)->n;
    pthread_mutex_unlock(&set->wlock);
    return n;
}

size_t revoke_memory(struct revoke_set *set)
{
    pthread_mutex_lock(&set->wlock);
    struct rtable *t = atomic_load(&set->cur);
    size_t bytes = sizeof(*set) + sizeof(*t) + t->cap * sizeof(struct rslot);
    for (struct retired *r = set->retired; r != NULL; r = r->next)
        bytes += sizeof(*r->t) + r->t->cap * sizeof(struct rslot);
    pthread_mutex_unlock(&set->wlock);
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

/* ---- subjects ------------------------------------------------------------------------------ */

/* tag and base64url of SHA-256(label name), cut to REVOKE_SUBJECT_MARKER_LEN */
static void marker(char tag, const char *label, const char *name,
                   char out[REVOKE_SUBJECT_MARKER_LEN + 1])
{
    unsigned char d[DIGEST_SHA256_LEN];
    char enc[48], in[16 + 1024]; /* user ids: 200 bytes at most; client ids 1 KiB */
    int n = snprintf(in, sizeof(in), "%s%s", label, name);
    digest_sha256(in, n < (int)sizeof(in) ? (size_t)n : sizeof(in) - 1, d);
    codec_b64url_encode(d, sizeof(d), enc);
    out[0] = tag;
    memcpy(out + 1, enc, REVOKE_SUBJECT_MARKER_LEN - 1);
    out[REVOKE_SUBJECT_MARKER_LEN] = '\0';
}

void revoke_subject_marker(const char *sub, char out[REVOKE_SUBJECT_MARKER_LEN + 1])
{
    marker('S', "subject:", sub, out);
}

void revoke_client_marker(const char *client_id, char out[REVOKE_SUBJECT_MARKER_LEN + 1])
{
    marker('C', "client:", client_id, out);
}

bool revoke_subject_covers(struct revoke_set *set, const char *marker, int64_t iat)
{
    int64_t exp = revoke_get(set, marker);
    return exp != 0 && iat <= exp - REVOKE_SUBJECT_HORIZON_S;
}
