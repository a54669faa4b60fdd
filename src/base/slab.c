/* slab.c -- per-thread size-class free lists (see slab.h). */
#include "slab.h"

#include <stdint.h>
#include <string.h>

#include "xalloc.h"

#define CLASSES 10 /* 32 << 0 .. 32 << 9 = 16 KiB (libevent reads into 8 KiB chains) */
#define KEEP_BYTES (1 << 20) /* a class keeps at most this much, and SLAB_KEEP blocks */
#define BIG 0xff
#define HEADER 16

struct block {
    struct block *next;
};

struct freelist {
    struct block *head;
    size_t n;
};

static _Thread_local struct freelist lists[CLASSES];

static int class_of(size_t n)
{
    size_t size = 32;
    for (int c = 0; c < CLASSES; c++, size <<= 1)
        if (n <= size)
            return c;
    return BIG;
}

void *slab_alloc(size_t n)
{
    int c = class_of(n);
    unsigned char *p;
    if (c != BIG && lists[c].head != NULL) {
        p = (unsigned char *)lists[c].head;
        lists[c].head = lists[c].head->next;
        lists[c].n--;
    } else {
        p = xmalloc(HEADER + (c == BIG ? n : (size_t)32 << c));
    }
    p[0] = (unsigned char)c;
    return p + HEADER;
}

void *slab_calloc(size_t count, size_t n)
{
    if (n != 0 && count > SIZE_MAX / n)
        p2a_oom(SIZE_MAX);
    void *p = slab_alloc(count * n);
    memset(p, 0, count * n);
    return p;
}

void *slab_realloc(void *p, size_t n)
{
    if (p == NULL)
        return slab_alloc(n);
    unsigned char *h = (unsigned char *)p - HEADER;
    if (h[0] == BIG) { /* stays a malloc block whatever its new size */
        unsigned char *q = xrealloc(h, HEADER + n);
        return q + HEADER;
    }
    size_t cap = (size_t)32 << h[0];
    if (n <= cap)
        return p;
    void *q = slab_alloc(n);
    memcpy(q, p, cap);
    slab_free(p);
    return q;
}

void slab_free(void *p)
{
    if (p == NULL)
        return;
    unsigned char *h = (unsigned char *)p - HEADER;
    int c = h[0];
    if (c == BIG) {
        free(h);
        return;
    }
    size_t keep = KEEP_BYTES / ((size_t)32 << c);
    if (lists[c].n >= (keep < SLAB_KEEP ? keep : SLAB_KEEP)) {
        free(h);
        return;
    }
    struct block *b = (struct block *)(void *)h;
    b->next = lists[c].head;
    lists[c].head = b;
    lists[c].n++;
}

void slab_thread_cleanup(void)
{
    for (int c = 0; c < CLASSES; c++) {
        while (lists[c].head != NULL) {
            struct block *b = lists[c].head;
            lists[c].head = b->next;
            free(b);
        }
        lists[c].n = 0;
    }
}
