/* lastused.c -- the marks table (see lastused.h).
 *
 * Open addressing with linear probing, jti inline, kept at most half full; grows by
 * doubling up to LASTUSED_MAX entries. Clearing keeps the table's size, so a steady load
 * allocates nothing after warm-up.
 */
#include "lastused.h"

#include <pthread.h>
#include <string.h>

#include "revoke.h"
#include "xalloc.h"

struct mark {
    char jti[REVOKE_MAX_JTI + 1];
    int64_t ts;
};

struct lastused {
    pthread_mutex_t lock;
    struct mark *table;
    size_t cap, n;
};

#define MIN_CAP 256

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct lastused *lastused_new(void)
{
    struct lastused *lu = xcalloc(1, sizeof(*lu));
    P2A_ASSERT(pthread_mutex_init(&lu->lock, NULL) == 0);
    lu->cap = MIN_CAP;
    lu->table = xcalloc(lu->cap, sizeof(struct mark));
    return lu;
}

void lastused_free(struct lastused *lu)
{
    if (lu == NULL)
        return;
    pthread_mutex_destroy(&lu->lock);
    free(lu->table);
    free(lu);
}

static struct mark *slot(struct mark *t, size_t cap, const char *jti)
{
    for (size_t i = hash(jti) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (t[i].jti[0] == '\0' || strcmp(t[i].jti, jti) == 0)
            return &t[i];
}

/* Caller holds lu->lock. */
static void put(struct lastused *lu, const char *jti, int64_t ts)
{
    size_t len = strlen(jti);
    if (len == 0 || len > REVOKE_MAX_JTI)
        return;
    if ((lu->n + 1) * 2 > lu->cap) {
        if (lu->n >= LASTUSED_MAX)
            return;
        size_t cap = lu->cap * 2;
        struct mark *t = xcalloc(cap, sizeof(struct mark));
        for (size_t i = 0; i < lu->cap; i++)
            if (lu->table[i].jti[0] != '\0')
                *slot(t, cap, lu->table[i].jti) = lu->table[i];
        free(lu->table);
        lu->table = t;
        lu->cap = cap;
    }
    struct mark *m = slot(lu->table, lu->cap, jti);
    if (m->jti[0] == '\0') {
        memcpy(m->jti, jti, len + 1);
        lu->n++;
    }
    if (ts > m->ts)
        m->ts = ts;
}

void lastused_mark(struct lastused *lu, const char *jti, int64_t ts)
{
    pthread_mutex_lock(&lu->lock);
    put(lu, jti, ts);
    pthread_mutex_unlock(&lu->lock);
}

void lastused_drain(struct lastused *src, struct lastused *dst)
{
    pthread_mutex_lock(&src->lock);
    pthread_mutex_lock(&dst->lock);
    for (size_t i = 0; i < src->cap && src->n > 0; i++) {
        if (src->table[i].jti[0] != '\0') {
            put(dst, src->table[i].jti, src->table[i].ts);
            src->table[i].jti[0] = '\0';
            src->table[i].ts = 0;
            src->n--;
        }
    }
    pthread_mutex_unlock(&dst->lock);
    pthread_mutex_unlock(&src->lock);
}

size_t lastused_count(struct lastused *lu)
{
    pthread_mutex_lock(&lu->lock);
    size_t n = lu->n;
    pthread_mutex_unlock(&lu->lock);
    return n;
}

void lastused_each(struct lastused *lu, void (*fn)(void *arg, const char *jti, int64_t ts),
                   void *arg)
{
    for (size_t i = 0; i < lu->cap; i++)
        if (lu->table[i].jti[0] != '\0')
            fn(arg, lu->table[i].jti, lu->table[i].ts);
}

void lastused_clear(struct lastused *lu)
{
    pthread_mutex_lock(&lu->lock);
    memset(lu->table, 0, lu->cap * sizeof(struct mark));
    lu->n = 0;
    pthread_mutex_unlock(&lu->lock);
}
