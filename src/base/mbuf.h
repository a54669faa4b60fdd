/* mbuf.h -- a growable string: exposition text, pages, URLs being built. */
#ifndef P2A_MBUF_H
#define P2A_MBUF_H

#include <stddef.h>

struct mbuf {
    char *s; /* NUL-terminated once anything was written; NULL before */
    size_t len, cap;
};

/* Appends printf-formatted text (aborts on exhaustion, as every allocation here). */
void mbuf_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mbuf_free(struct mbuf *b);

#endif
