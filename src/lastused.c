/* lastused.c -- the marks table (see lastused.h): a jtitab of jti -> time behind a mutex.
 * Clearing keeps the table's size, so a steady load allocates nothing after warm-up. */
#include "lastused.h"

#include <pthread.h>

#include "jtitab.h"
#include "xalloc.h"

struct lastused {
    pthread_mutex_t lock;
    struct jtitab tab;
};

struct lastused *lastused_new(void)
{
    struct lastused *lu = xcalloc(1, sizeof(*lu));
    P2A_ASSERT(pthread_mutex_init(&lu->lock, NULL) == 0);
    jtitab_init(&lu->tab, 256);
    return lu;
}

void lastused_free(struct lastused *lu)
{
    if (lu == NULL)
        return;
    pthread_mutex_destroy(&lu->lock);
    jtitab_deinit(&lu->tab);
    free(lu);
}

void lastused_mark(struct lastused *lu, const char *jti, int64_t ts)
{
    pthread_mutex_lock(&lu->lock);
    jtitab_put_max(&lu->tab, jti, ts, LASTUSED_MAX);
    pthread_mutex_unlock(&lu->lock);
}

void lastused_drain(struct lastused *src, struct lastused *dst)
{
    pthread_mutex_lock(&src->lock);
    pthread_mutex_lock(&dst->lock);
    for (size_t i = 0; i < src->tab.cap && src->tab.n > 0; i++) {
        const struct jti_entry *e = &src->tab.v[i];
        if (e->jti[0] != '\0')
            jtitab_put_max(&dst->tab, e->jti, e->val, LASTUSED_MAX);
    }
    jtitab_clear(&src->tab);
    pthread_mutex_unlock(&dst->lock);
    pthread_mutex_unlock(&src->lock);
}

size_t lastused_count(struct lastused *lu)
{
    pthread_mutex_lock(&lu->lock);
    size_t n = lu->tab.n;
    pthread_mutex_unlock(&lu->lock);
    return n;
}

void lastused_each(struct lastused *lu, void (*fn)(void *arg, const char *jti, int64_t ts),
                   void *arg)
{
    for (size_t i = 0; i < lu->tab.cap; i++)
        if (lu->tab.v[i].jti[0] != '\0')
            fn(arg, lu->tab.v[i].jti, lu->tab.v[i].val);
}

void lastused_clear(struct lastused *lu)
{
    pthread_mutex_lock(&lu->lock);
    jtitab_clear(&lu->tab);
    pthread_mutex_unlock(&lu->lock);
}
