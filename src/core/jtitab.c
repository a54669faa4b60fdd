/* jtitab.c -- the jti table (see jtitab.h). */
#include "jtitab.h"

#include <string.h>

#include "xalloc.h"

uint64_t jtitab_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static struct jti_entry *slot(struct jti_entry *v, size_t cap, const char *jti)
{
    for (size_t i = jtitab_hash(jti) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (v[i].jti[0] == '\0' || strcmp(v[i].jti, jti) == 0)
            return &v[i];
}

void jtitab_init(struct jtitab *t, size_t min_cap)
{
    t->min_cap = min_cap;
    t->cap = min_cap;
    t->n = 0;
    t->v = xcalloc(t->cap, sizeof(struct jti_entry));
}

void jtitab_deinit(struct jtitab *t)
{
    free(t->v);
    memset(t, 0, sizeof(*t));
}

static void resize(struct jtitab *t, size_t cap)
{
    struct jti_entry *v = xcalloc(cap, sizeof(struct jti_entry));
    size_t n = 0;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->v[i].jti[0] != '\0') {
            *slot(v, cap, t->v[i].jti) = t->v[i];
            n++;
        }
    }
    free(t->v);
    t->v = v;
    t->cap = cap;
    t->n = n;
}

bool jtitab_put_max(struct jtitab *t, const char *jti, int64_t val, size_t limit)
{
    size_t len = strlen(jti);
    if (len == 0 || len > JTI_MAX_LEN)
        return false;
    struct jti_entry *e = slot(t->v, t->cap, jti);
    if (e->jti[0] != '\0') {
        if (val > e->val)
            e->val = val;
        return false;
    }
    if (t->n >= limit)
        return false;
    if ((t->n + 1) * 2 > t->cap) {
        resize(t, t->cap * 2);
        e = slot(t->v, t->cap, jti);
    }
    memcpy(e->jti, jti, len + 1);
    e->val = val;
    t->n++;
    return true;
}

void jtitab_clear(struct jtitab *t)
{
    memset(t->v, 0, t->cap * sizeof(struct jti_entry));
    t->n = 0;
}
