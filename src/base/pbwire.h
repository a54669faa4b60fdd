/* pbwire.h -- reading (and writing) protobuf's wire format in place, for the one hot-path message
 * whose unpacking by protobuf-c cost more than the rest of its call: Envoy's CheckRequest carries
 * every header of the request, each a map entry that protobuf-c allocates and copies, while
 * Check needs three strings of it. A reader walks the fields of one message without copying
 * or allocating; a length-delimited field's bytes can be read as a message in turn.
 *
 * Every wire type but the groups (3, 4: deprecated, never sent by Envoy) is understood and
 * skipped when not wanted; a varint longer than 10 bytes, a length past the end, a field
 * number 0 or a group makes the reader fail (pbw_next() false with bad set). Pure.
 */
#ifndef P2A_PBWIRE_H
#define P2A_PBWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pbw_type { PBW_VARINT = 0, PBW_I64 = 1, PBW_LEN = 2, PBW_I32 = 5 };

struct pbw {
    const uint8_t *p, *end;
    bool bad;
};

struct pbw_field {
    uint32_t num;
    enum pbw_type type;
    uint64_t varint;     /* PBW_VARINT */
    const uint8_t *data; /* PBW_LEN: the bytes (a string, or a message for pbw_init) */
    size_t len;
};

static inline void pbw_init(struct pbw *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->end = p + len;
    r->bad = false;
}

/* The next field into f: false at the end of the message, or when it is malformed (bad). */
bool pbw_next(struct pbw *r, struct pbw_field *f);

/* Writing, for a message whose sizes the caller adds up first (innermost out): the bytes a
 * length-delimited field number num of len bytes takes, and writing it at p (data NULL:
 * only its key and length, its bytes to be written next). Returns the end. */
size_t pbw_varint_size(uint64_t v);
static inline size_t pbw_len_field_size(uint32_t num, size_t len)
{
    return pbw_varint_size((uint64_t)num << 3 | PBW_LEN) + pbw_varint_size(len) + len;
}
uint8_t *pbw_put_len_field(uint8_t *p, uint32_t num, const void *data, size_t len);
/* The same for a varint field (bool, enum, int64 as its two's complement). */
static inline size_t pbw_varint_field_size(uint32_t num, uint64_t v)
{
    return pbw_varint_size((uint64_t)num << 3 | PBW_VARINT) + pbw_varint_size(v);
}
uint8_t *pbw_put_varint_field(uint8_t *p, uint32_t num, uint64_t v);

#endif
