/* arena.h -- a bump arena over a buffer the caller owns: for allocations that all die
 * together (a decoded request, a parsed token), taken from the buffer while it lasts and
 * from malloc after. Nothing in the buffer is freed one by one: the owner resets the arena.
 * Inline: it sits on the Introspect path. */
#ifndef P2A_ARENA_H
#define P2A_ARENA_H

#include <stddef.h>
#include <stdlib.h>

struct arena {
    unsigned char *buf;
    size_t cap, used;
};

/* buf should be 16-byte aligned; what comes from it is. */
static inline void arena_init(struct arena *a, void *buf, size_t cap)
{
    a->buf = buf;
    a->cap = cap;
    a->used = 0;
}

/* NULL only when malloc fails. */
static inline void *arena_alloc(struct arena *a, size_t n)
{
    size_t at = (a->used + 15) & ~(size_t)15;
    if (at <= a->cap && n <= a->cap - at) {
        a->used = at + n;
        return a->buf + at;
    }
    return malloc(n);
}

/* Frees p when it came from malloc; nothing when it is the arena's. */
static inline void arena_free(const struct arena *a, void *p)
{
    if ((unsigned char *)p >= a->buf && (unsigned char *)p < a->buf + a->cap)
        return;
    free(p);
}

static inline void arena_reset(struct arena *a)
{
    a->used = 0;
}

#endif
