/* pbwire.c -- see pbwire.h. */
#include "pbwire.h"

static bool varint(struct pbw *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p == r->end)
            return false;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false; /* more than 10 bytes */
}

static bool fail(struct pbw *r)
{
    r->bad = true;
    return false;
}

bool pbw_next(struct pbw *r, struct pbw_field *f)
{
    if (r->bad || r->p == r->end)
        return false;
    uint64_t key;
    if (!varint(r, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
        return fail(r);
    f->num = (uint32_t)(key >> 3);
    f->type = (enum pbw_type)(key & 7);
    f->data = NULL;
    f->len = 0;
    f->varint = 0;
    switch (f->type) {
    case PBW_VARINT:
        return varint(r, &f->varint) || fail(r);
    case PBW_I64:
    case PBW_I32: {
        size_t n = f->type == PBW_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            return fail(r);
        f->data = r->p;
        f->len = n;
        r->p += n;
        return true;
    }
    case PBW_LEN: {
        uint64_t n;
        if (!varint(r, &n) || n > (uint64_t)(r->end - r->p))
            return fail(r);
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return true;
    }
    default:
        return fail(r); /* groups, and the wire types that do not exist */
    }
}
