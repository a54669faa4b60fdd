/* lastused.c -- marks tables and their inbox (see lastused.h): a jtitab of jti -> time.
 * Merging keeps the source table's size, so a steady load allocates nothing after warm-up. */
#include "lastused.h"

#include <pthread.h>

#include "jtitab.h"
#include "xalloc.h"

struct lastused {
    struct jtitab tab;
};

struct lastused_inbox {
    pthread_mutex_t lock;
    struct lastused *marks;
};

struct lastused *lastused_new(void)
{
    struct lastused *lu = xcalloc(1, sizeof(*lu));
    jtitab_init(&lu->tab, 256);
    return lu;
}

void lastused_free(struct lastused *lu)
{
    if (lu == NULL)
        return;
    jtitab_deinit(&lu->tab);
    free(lu);
}

void lastused_mark(struct lastused *lu, const char *jti, int64_t ts)
{
    jtitab_put_max(&lu->tab, jti, ts, LASTUSED_MAX);
}

size_t lastused_count(const struct lastused *lu)
{
    return lu->tab.n;
}

void lastused_each(const struct lastused *lu,
                   void (*fn)(void *arg, const char *jti, int64_t ts), void *arg)
{
    for (size_t i = 0; i < lu->tab.cap; i++)
        if (lu->tab.v[i].jti[0] != '\0')
            fn(arg, lu->tab.v[i].jti, lu->tab.v[i].val);
}

void lastused_merge(struct lastused *dst, struct lastused *src)
{
    for (size_t i = 0; i < src->tab.cap && src->tab.n > 0; i++) {
        const struct jti_entry *e = &src->tab.v[i];
        if (e->jti[0] != '\0')
            jtitab_put_max(&dst->tab, e->jti, e->val, LASTUSED_MAX);
    }
    jtitab_clear(&src->tab);
}

struct lastused_inbox *lastused_inbox_new(void)
{
    struct lastused_inbox *in = xcalloc(1, sizeof(*in));
    P2A_ASSERT(pthread_mutex_init(&in->lock, NULL) == 0);
    in->marks = lastused_new();
    return in;
}

void lastused_inbox_free(struct lastused_inbox *in)
{
    if (in == NULL)
        return;
    pthread_mutex_destroy(&in->lock);
    lastused_free(in->marks);
    free(in);
}

void lastused_inbox_put(struct lastused_inbox *in, struct lastused *marks)
{
    pthread_mutex_lock(&in->lock);
    lastused_merge(in->marks, marks);
    pthread_mutex_unlock(&in->lock);
}

void lastused_inbox_take(struct lastused_inbox *in, struct lastused *dst)
{
    pthread_mutex_lock(&in->lock);
    lastused_merge(dst, in->marks);
    pthread_mutex_unlock(&in->lock);
}
