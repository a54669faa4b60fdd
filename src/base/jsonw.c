/* jsonw.c -- see jsonw.h. */
#include "jsonw.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void put(struct jsonw *w, const char *s, size_t n)
{
    if (w->overflow || w->cap - w->len <= n) { /* keep a byte for the NUL */
        w->overflow = true;
        return;
    }
    memcpy(w->out + w->len, s, n);
    w->len += n;
}

static void put_string(struct jsonw *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(w, "\"", 1);
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(w, run, (size_t)(p - run));
        if (c == '\0')
            break;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(w, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(w, e, 6);
        }
        run = p + 1;
    }
    put(w, "\"", 1);
}

static void member(struct jsonw *w, const char *key)
{
    if (!w->first)
        put(w, ",", 1);
    w->first = false;
    put_string(w, key);
    put(w, ":", 1);
}

void jsonw_begin(struct jsonw *w, char *out, size_t cap)
{
    *w = (struct jsonw){.out = out, .cap = cap, .first = true};
    put(w, "{", 1);
}

void jsonw_str(struct jsonw *w, const char *key, const char *value)
{
    member(w, key);
    put_string(w, value);
}

void jsonw_int(struct jsonw *w, const char *key, int64_t value)
{
    char n[24];
    int len = snprintf(n, sizeof(n), "%" PRId64, value);
    member(w, key);
    put(w, n, (size_t)len);
}

void jsonw_bool(struct jsonw *w, const char *key, bool value)
{
    member(w, key);
    put(w, value ? "true" : "false", value ? 4 : 5);
}

void jsonw_array(struct jsonw *w, const char *key)
{
    member(w, key);
    put(w, "[", 1);
    w->first = true;
}

void jsonw_item(struct jsonw *w, const char *value)
{
    if (!w->first)
        put(w, ",", 1);
    w->first = false;
    put_string(w, value);
}

void jsonw_array_end(struct jsonw *w)
{
    put(w, "]", 1);
    w->first = false;
}

void jsonw_object(struct jsonw *w, const char *key)
{
    member(w, key);
    put(w, "{", 1);
    w->first = true;
}

void jsonw_object_end(struct jsonw *w)
{
    put(w, "}", 1);
    w->first = false;
}

long jsonw_end(struct jsonw *w)
{
    put(w, "}", 1);
    if (w->overflow) {
        if (w->cap > 0)
            w->out[0] = '\0';
        return -1;
    }
    w->out[w->len] = '\0';
    return (long)w->len;
}
