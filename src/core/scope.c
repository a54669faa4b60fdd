/* scope.c -- see scope.h. Pure. */
#include "scope.h"

#include <stdio.h>
#include <string.h>

#include "strlist.h"

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
    struct strlist it = strlist_of(*p, " ");
    if (!strlist_next(&it))
        return false;
    *tok = it.item;
    *len = it.len;
    *p = it.p;
    return true;
}

bool scope_has(const char *list, const char *tok, size_t n)
{
    return strlist_has(list, " ", tok, n, false);
}

/* Appends tok[0..n) to the list out[0..*o) when it fits. */
static void append(char *out, size_t outlen, size_t *o, const char *tok, size_t n)
{
    if (*o + n + 2 > outlen)
        return;
    if (*o > 0)
        out[(*o)++] = ' ';
    memcpy(out + *o, tok, n);
    *o += n;
    out[*o] = '\0';
}

static bool is_offline(const char *t, size_t n)
{
    return n == sizeof(SCOPE_OFFLINE_ACCESS) - 1 && strncmp(t, SCOPE_OFFLINE_ACCESS, n) == 0;
}

/* Appends to out[0..*o) each offered scope in list (offline_access left out): false when
 * none was. */
static bool append_offered(char *out, size_t outlen, size_t *o, const char *offered,
                           const char *list)
{
    size_t before = *o;
    const char *t;
    size_t m;
    for (const char *p = offered; list != NULL && scope_next(&p, &t, &m);)
        if (scope_has(list, t, m) && !is_offline(t, m) && !scope_has(out, t, m))
            append(out, outlen, o, t, m);
    return *o > before;
}

bool scope_grant(const char *offered, const char *defaults, const char *registered,
                 const char *requested, char *out, size_t outlen)
{
    size_t o = 0;
    bool useful = false; /* a scope other than offline_access granted */
    out[0] = '\0';
    const char *t;
    size_t m;
    for (const char *p = offered; requested != NULL && scope_next(&p, &t, &m);) {
        if (!scope_has(requested, t, m))
            continue;
        append(out, outlen, &o, t, m);
        useful = useful || !is_offline(t, m);
    }
    /* nothing we offer asked for: what the client registered, else the defaults */
    if (!useful && !append_offered(out, outlen, &o, offered, registered))
        append_offered(out, outlen, &o, offered, defaults);
    if (o == 0 || (o == sizeof(SCOPE_OFFLINE_ACCESS) - 1 && is_offline(out, o))) {
        out[0] = '\0';
        return false;
    }
    return true;
}

void scope_union(char *out, size_t outlen, const char *add)
{
    size_t o = strlen(out);
    const char *t;
    size_t m;
    for (const char *p = add; scope_next(&p, &t, &m);)
        if (!scope_has(out, t, m))
            append(out, outlen, &o, t, m);
}

void scope_step_up(const char *granted, const char *required, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    const char *t;
    size_t m;
    for (const char *p = granted; scope_next(&p, &t, &m);)
        if (!is_offline(t, m) && !scope_has(out, t, m))
            append(out, outlen, &o, t, m);
    for (const char *p = required; scope_next(&p, &t, &m);)
        if (!is_offline(t, m) && !scope_has(out, t, m))
            append(out, outlen, &o, t, m);
}

bool scope_covers(const char *have, const char *need)
{
    const char *t;
    size_t m;
    for (const char *p = need; scope_next(&p, &t, &m);)
        if (!scope_has(have, t, m))
            return false;
    return true;
}
