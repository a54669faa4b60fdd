/* test_pbwire.c -- protobuf's wire format read in place: every wire type, nested messages,
 * and each malformation refused. */
#include "cm.h"

#include <string.h>

#include "pbwire.h"

static void pbwire__reads_every_type_and_nests(void **state)
{
    (void)state;
    /* field 1 varint 300; field 2 fixed64; field 3 "hi"; field 4 fixed32; field 5 message
     * { field 1 "x" } */
    const uint8_t m[] = {0x08, 0xac, 0x02, 0x11, 1, 2, 3, 4, 5,    6, 7,    8, 0x1a,
                         2,    'h',  'i',  0x25, 9, 9, 9, 9, 0x2a, 3, 0x0a, 1, 'x'};
    struct pbw r, inner;
    struct pbw_field f;
    pbw_init(&r, m, sizeof(m));
    assert_true(pbw_next(&r, &f));
    assert_int_equal(f.num, 1);
    assert_int_equal(f.type, PBW_VARINT);
    assert_int_equal(f.varint, 300);
    assert_true(pbw_next(&r, &f));
    assert_int_equal(f.type, PBW_I64);
    assert_int_equal(f.len, 8);
    assert_true(pbw_next(&r, &f));
    assert_int_equal(f.num, 3);
    assert_int_equal(f.len, 2);
    assert_memory_equal(f.data, "hi", 2);
    assert_true(pbw_next(&r, &f));
    assert_int_equal(f.type, PBW_I32);
    assert_true(pbw_next(&r, &f));
    assert_int_equal(f.num, 5);
    pbw_init(&inner, f.data, f.len);
    assert_true(pbw_next(&inner, &f));
    assert_memory_equal(f.data, "x", 1);
    assert_false(pbw_next(&inner, &f));
    assert_false(inner.bad);
    assert_false(pbw_next(&r, &f));
    assert_false(r.bad);
}

static void pbwire__refuses_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *why;
        uint8_t b[12];
        size_t n;
    } bad[] = {
        {"length past the end", {0x0a, 5, 'a'}, 3},
        {"field number 0", {0x00, 1}, 2},
        {"a group", {0x0b, 0x0c}, 2},
        {"wire type 7", {0x0f, 1}, 2},
        {"varint cut short", {0x08, 0x80}, 2},
        {"an 11-byte varint",
         {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1},
         12},
        {"fixed64 cut short", {0x09, 1, 2, 3}, 4},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct pbw r;
        struct pbw_field f;
        pbw_init(&r, bad[i].b, bad[i].n);
        while (pbw_next(&r, &f))
            ;
        if (!r.bad)
            fail_msg("accepted: %s", bad[i].why);
    }
}

static void pbwire__writes_what_it_reads(void **state)
{
    (void)state;
    uint8_t buf[400], big[300];
    memset(big, 'b', sizeof(big));
    size_t inner = pbw_len_field_size(1, 3) + pbw_len_field_size(2, sizeof(big));
    size_t n = pbw_len_field_size(7, inner);
    assert_int_equal(n, 1 + 2 + (1 + 1 + 3) + (1 + 2 + 300)); /* 300 needs a 2-byte length */
    uint8_t *p = pbw_put_len_field(buf, 7, NULL, inner);
    p = pbw_put_len_field(p, 1, "key", 3);
    p = pbw_put_len_field(p, 2, big, sizeof(big));
    assert_int_equal((size_t)(p - buf), n);
    struct pbw r, in;
    struct pbw_field f;
    pbw_init(&r, buf, n);
    assert_true(pbw_next(&r, &f));
    assert_int_equal(f.num, 7);
    pbw_init(&in, f.data, f.len);
    assert_true(pbw_next(&in, &f));
    assert_memory_equal(f.data, "key", 3);
    assert_true(pbw_next(&in, &f));
    assert_int_equal(f.len, 300);
    assert_false(pbw_next(&in, &f) || in.bad || pbw_next(&r, &f) || r.bad);
}

static void pbwire__writes_varints_it_reads(void **state)
{
    (void)state;
    uint8_t buf[64];
    const uint64_t vals[] = {1, 127, 128, 300, (uint64_t)-1}; /* -1: an int64, 10 bytes */
    size_t n = 0;
    for (size_t i = 0; i < 5; i++)
        n += pbw_varint_field_size((uint32_t)(i + 1), vals[i]);
    assert_int_equal(n, 5 + 1 + 1 + 2 + 2 + 10);
    uint8_t *p = buf;
    for (size_t i = 0; i < 5; i++)
        p = pbw_put_varint_field(p, (uint32_t)(i + 1), vals[i]);
    assert_int_equal((size_t)(p - buf), n);
    struct pbw r;
    struct pbw_field f;
    pbw_init(&r, buf, n);
    for (size_t i = 0; i < 5; i++) {
        assert_true(pbw_next(&r, &f));
        assert_int_equal(f.num, i + 1);
        assert_int_equal(f.type, PBW_VARINT);
        assert_true(f.varint == vals[i]);
    }
    assert_false(pbw_next(&r, &f) || r.bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pbwire__reads_every_type_and_nests),
        cmocka_unit_test(pbwire__refuses_malformed),
        cmocka_unit_test(pbwire__writes_what_it_reads),
        cmocka_unit_test(pbwire__writes_varints_it_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
