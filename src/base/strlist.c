/* strlist.c -- reading separator-delimited lists in place (see strlist.h). */
#include "strlist.h"

#include <string.h>
#include <strings.h>

bool strlist_next(struct strlist *it)
{
    for (;;) {
        const char *s = it->p;
        while (*s == ' ' && strchr(it->seps, ' ') == NULL)
            s++;
        size_t n = strcspn(s, it->seps);
        it->p = s + n + (s[n] != '\0'); /* past the separator */
        while (n > 0 && s[n - 1] == ' ')
            n--;
        if (n > 0) {
            it->item = s;
            it->len = n;
            return true;
        }
        if (s[0] == '\0')
            return false;
        if (s[0] != ' ')
            it->empty++;
    }
}

bool strlist_has(const char *s, const char *seps, const char *v, size_t vn, bool nocase)
{
    for (struct strlist it = strlist_of(s, seps); strlist_next(&it);)
        if (it.len == vn && (nocase ? strncasecmp(it.item, v, vn) : memcmp(it.item, v, vn)) == 0)
            return true;
    return false;
}
