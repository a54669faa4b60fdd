/* pbwire.c -- see pbwire.h. */
#include "pbwire.h"

#include <string.h>

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

size_t pbw_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

uint8_t *pbw_put_len_field(uint8_t *p, uint32_t num, const void *data, size_t len)
{
    p = put_varint(p, (uint64_t)num << 3 | PBW_LEN);
    p = put_varint(p, len);
    if (data != NULL && len > 0) {
        memcpy(p, data, len);
        p += len;
    }
    return p;
}

uint8_t *pbw_put_varint_field(uint8_t *p, uint32_t num, uint64_t v)
{
    p = put_varint(p, (uint64_t)num << 3 | PBW_VARINT);
    return put_varint(p, v);
}
