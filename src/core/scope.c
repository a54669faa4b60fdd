/* scope.c -- see scope.h. Pure. */
#include "scope.h"

#include <stdio.h>
#include <string.h>

const char *scope_check(const char *s)
{
    size_t n = strlen(s);
    if (n > SCOPE_MAX_LEN)
        return "scope must be at most 1000 bytes";
    bool prev_space = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ') {
            if (prev_space)
                return "scope must be scope tokens separated by single spaces";
            prev_space = true;
        } else if (c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e)) {
            prev_space = false;
        } else {
            return "scope has a character outside RFC 6749 scope tokens";
        }
    }
    if (n > 0 && prev_space)
        return "scope must not end with a space";
    return NULL;
}

bool scope_next(const char **p, const char **tok, size_t *len)
{
    const char *s = *p;
    while (*s == ' ')
        s++;
    if (*s == '\0')
        return false;
    size_t m = strcspn(s, " ");
    *tok = s;
    *len = m;
    *p = s + m;
    return true;
}

bool scope_has(const char *list, const char *tok, size_t n)
{
    const char *t;
    size_t m;
    for (const char *p = list; scope_next(&p, &t, &m);)
        if (m == n && strncmp(t, tok, n) == 0)
            return true;
    return false;
}

void scope_grant(const char *supported, const char *requested, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    const char *t;
    size_t m;
    for (const char *p = supported; scope_next(&p, &t, &m);) {
        if (requested != NULL && scope_has(requested, t, m) && o + m + 2 <= outlen) {
            if (o > 0)
                out[o++] = ' ';
            memcpy(out + o, t, m);
            o += m;
            out[o] = '\0';
        }
    }
    if (o == 0)
        snprintf(out, outlen, "%s", supported);
}
