/* url.c -- see url.h. */
#include "url.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "mbuf.h"

bool url_split(const char *s, struct url_parts *u)
{
    memset(u, 0, sizeof(*u));
    const char *colon = strchr(s, ':');
    if (colon == NULL || colon == s || !isalpha((unsigned char)s[0]))
        return false;
    for (const char *p = s; p < colon; p++)
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
            return false;
    u->scheme = s, u->scheme_len = (size_t)(colon - s);
    if (strncmp(colon, "://", 3) != 0) {
        u->rest = colon + 1;
        return true;
    }
    u->has_authority = true;
    const char *a = colon + 3;
    size_t alen = strcspn(a, "/?#");
    if (memchr(a, '@', alen) != NULL)
        return false; /* userinfo */
    u->host = a;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', alen);
        if (close == NULL)
            return false;
        u->host_len = (size_t)(close - a) + 1;
    } else {
        const char *pc = memchr(a, ':', alen);
        u->host_len = pc ? (size_t)(pc - a) : alen;
    }
    const char *after = a + u->host_len;
    if (after < a + alen) { /* ":port" */
        if (*after != ':' || after + 1 == a + alen)
            return false;
        for (const char *p = after + 1; p < a + alen; p++)
            if (!isdigit((unsigned char)*p))
                return false;
    }
    u->rest = a + alen;
    return true;
}

bool url_scheme_is(const struct url_parts *u, const char *scheme)
{
    return u->scheme_len == strlen(scheme) && strncasecmp(u->scheme, scheme, u->scheme_len) == 0;
}

bool url_host_is_loopback(const struct url_parts *u)
{
    static const char *const hosts[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
        if (u->host_len == strlen(hosts[i]) && strncasecmp(u->host, hosts[i], u->host_len) == 0)
            return true;
    return false;
}

bool url_is_http(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '#')
            return false;
    struct url_parts u;
    return (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0) && url_split(s, &u) &&
           u.host_len > 0;
}

size_t url_authority_end(const char *s)
{
    const char *sep = strstr(s, "://");
    if (sep == NULL)
        return 0;
    return (size_t)(sep + 3 - s) + strcspn(sep + 3, "/?#");
}

const char *url_path(const char *s)
{
    const char *p = s + url_authority_end(s);
    return strcmp(p, "/") == 0 ? "" : p;
}

void url_well_known(const char *url, const char *name, char *out, size_t outlen)
{
    size_t auth = url_authority_end(url);
    snprintf(out, outlen, "%.*s/.well-known/%s%s", (int)auth, url, name, url_path(url));
}

void url_add_param(struct mbuf *u, const char *k, const char *v)
{
    mbuf_printf(u, "%c%s=", strchr(u->s ? u->s : "", '?') ? '&' : '?', k);
    url_encode(u, v);
}

void url_encode(struct mbuf *u, const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p) != NULL)
            mbuf_printf(u, "%c", *p);
        else
            mbuf_printf(u, "%%%02X", *p);
    }
}

/* The character an escape at p ("%xx", two hex digits) stands for, into *out, when it is
 * unreserved (RFC 3986 2.3: ALPHA, DIGIT, '-', '_', '~'; an encoded '.' is refused); false
 * otherwise: a gateway routes "/%61dmin" as "/admin", so must we. */
static bool unreserved_escape(const char *p, char *out)
{
    int c = codec_hexval((unsigned char)p[1]) * 16 + codec_hexval((unsigned char)p[2]);
    if (c < 0 || c > 0x7e || !(isalnum(c) || c == '-' || c == '_' || c == '~'))
        return false;
    *out = (char)c;
    return true;
}

/* The escape at p ("%xx") is one of those we refuse: '/', '.' or '\\' encoded. */
static bool escape_refused(const char *p)
{
    char a = p[1], b = (char)(p[2] | 0x20);
    return (a == '2' && (b == 'f' || b == 'e')) || (a == '5' && b == 'c');
}

bool url_path_normalize(const char *target, char *out, size_t cap, const char **why)
{
    size_t n = 0;
    const char *p = target;
    if (cap == 0 || *p != '/')
        return *why = "the path must begin with /", false;
    for (const char *q = p; *q != '\0'; q++) { /* every byte, query included */
        unsigned char c = (unsigned char)*q;
        if (c < 0x20 || c == 0x7f)
            return *why = "a control character in the path", false;
        if (c == '#')
            return *why = "a fragment (#) in the request target", false;
        if (c == '%' &&
            (codec_hexval((unsigned char)q[1]) < 0 || codec_hexval((unsigned char)q[2]) < 0))
            return *why = "a % in the path that is not followed by two hex digits", false;
    }
    while (*p == '/') { /* one segment per round: p at its '/' */
        const char *seg = p + 1, *end = seg;
        while (*end != '\0' && *end != '/' && *end != '?')
            end++;
        size_t len = (size_t)(end - seg);
        bool last = *end != '/';
        for (const char *q = seg; q < end; q++) {
            if (*q == '\\')
                return *why = "a backslash in the path", false;
            if (*q == '%' && escape_refused(q))
                return *why = "an encoded '/', '.' or '\\' (%2F, %2E, %5C) in the path", false;
        }
        if (len == 0 && !last)
            return *why = "an empty segment (//) in the path", false;
        if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            if (n == 0)
                return *why = "a .. segment above the root of the path", false;
            while (n > 0 && out[n - 1] != '/')
                n--;
            n--; /* the '/' before the segment removed */
            len = 0;
        } else if (len == 1 && seg[0] == '.') {
            len = 0;
        }
        if (len > 0 || last) { /* "/seg", or the "/" a path ending in a dot segment keeps */
            if (n + 1 + len >= cap)
                return *why = "the path is too long", false;
            out[n++] = '/';
            for (const char *q = seg; q < seg + len; q++) { /* %41 is "A" (RFC 3986 6.2.2.2) */
                char c = *q;
                if (*q == '%' && unreserved_escape(q, &c))
                    q += 2;
                out[n++] = c;
            }
        }
        p = end;
    }
    size_t qlen = strlen(p); /* "?query" or "" */
    if (n + qlen >= cap)
        return *why = "the path is too long", false;
    memcpy(out + n, p, qlen + 1);
    return true;
}
