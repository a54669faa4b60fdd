/* strlist.h -- the one reader of the lists settings and claims are written as
 * ("a, b,c" or "a b c"): items separated by any of the given characters, spaces around
 * each trimmed, empty items skipped (and counted). It reads in place: an item is a pointer and a
 * length into the string, which must outlive the reading. Pure.
 *
 *     for (struct strlist it = strlist_of(list, ","); strlist_next(&it);)
 *         use(it.item, it.len);
 */
#ifndef P2A_STRLIST_H
#define P2A_STRLIST_H

#include <stdbool.h>
#include <stddef.h>

struct strlist {
    const char *p;    /* where the next item is looked for */
    const char *seps; /* the separators; space is always trimmed */
    const char *item; /* the current item (not NUL-terminated) */
    size_t len;
    size_t empty; /* empty items skipped so far ("a,,b", "a, ,b"), for lists that refuse them */
};

static inline struct strlist strlist_of(const char *s, const char *seps)
{
    return (struct strlist){.p = s != NULL ? s : "", .seps = seps};
}

/* Moves to the next non-empty item; false at the end of the list. */
bool strlist_next(struct strlist *it);
/* Whether the list s holds v (len vn), compared case-insensitively when nocase. */
bool strlist_has(const char *s, const char *seps, const char *v, size_t vn, bool nocase);

#endif
