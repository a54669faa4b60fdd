/* xalloc.h -- allocators that abort on exhaustion.
 *
 * Running out of memory is not a condition this service can answer usefully, so, like
 * redis's zmalloc and h2o's h2o_mem_alloc, we print the size and abort. Callers never test
 * for NULL. Every length that comes off the wire is bounded before it reaches these.
 */
#ifndef P2A_XALLOC_H
#define P2A_XALLOC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void p2a_oom(size_t n)
{
    fprintf(stderr, "pipe2-authd: out of memory allocating %zu bytes\n", n);
    abort();
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        p2a_oom(n);
    return p;
}

static inline void *xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (p == NULL)
        p2a_oom(count * n);
    return p;
}

static inline void *xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n ? n : 1);
    if (p == NULL)
        p2a_oom(n);
    return p;
}

static inline char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static inline char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

#define P2A_ASSERT(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "pipe2-authd: assertion failed: %s (%s:%d)\n", #cond, __FILE__,       \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
