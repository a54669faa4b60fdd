/* test_codec.c -- base64url, hex and UTF-8, against the RFC 4648 vectors. */
#include "cm.h"

#include "codec.h"

static void codec__b64url(void **state)
{
    (void)state;
    /* RFC 4648 10, in the url alphabet and without padding */
    static const struct { const char *in, *out; } v[] = {
        {"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"},
        {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char enc[32];
        unsigned char dec[32];
        assert_int_equal(codec_b64url_encode(v[i].in, strlen(v[i].in), enc), strlen(v[i].out));
        assert_string_equal(enc, v[i].out);
        long n = codec_b64url_decode(v[i].out, strlen(v[i].out), dec, sizeof(dec));
        assert_int_equal(n, (long)strlen(v[i].in));
        assert_memory_equal(dec, v[i].in, (size_t)n);
    }
    unsigned char out[16];
    assert_int_equal(codec_b64url_decode("Zm+v", 4, out, sizeof(out)), -1); /* not url */
    assert_int_equal(codec_b64url_decode("Zm/v", 4, out, sizeof(out)), -1);
    assert_int_equal(codec_b64url_decode("Zm9v=", 5, out, sizeof(out)), -1); /* padded */
    assert_int_equal(codec_b64url_decode("Z", 1, out, sizeof(out)), -1);     /* 6 bits */
    /* one spelling for some bytes: the bits past the data must be zero (RFC 4648 3.5) */
    assert_int_equal(codec_b64url_decode("QQ", 2, out, sizeof(out)), 1);
    assert_int_equal(codec_b64url_decode("QR", 2, out, sizeof(out)), -1);
    assert_int_equal(codec_b64url_decode("Q_", 2, out, sizeof(out)), -1);
    assert_int_equal(codec_b64url_decode("QUE", 3, out, sizeof(out)), 2);
    assert_int_equal(codec_b64url_decode("QUF", 3, out, sizeof(out)), -1);
    assert_int_equal(codec_b64url_decode("Zm9vYmFy", 8, out, 3), -1);        /* too small */
    assert_true(codec_b64url_char('-') && codec_b64url_char('_') && !codec_b64url_char('+'));
}

static void codec__hex_and_utf8(void **state)
{
    (void)state;
    char hex[9];
    codec_hex((const unsigned char *)"\x00\x7f\xab\xff", 4, hex);
    assert_string_equal(hex, "007fabff");
    assert_int_equal(codec_hexval('a'), 10);
    assert_int_equal(codec_hexval('F'), 15);
    assert_int_equal(codec_hexval('g'), -1);
    assert_int_equal(codec_utf8_chars("abc", 3), 3);
    assert_int_equal(codec_utf8_chars("h\xc3\xa9llo", 6), 5);
    assert_int_equal(codec_utf8_chars("\xf0\x9f\x94\x91", 4), 1);
    assert_int_equal(codec_utf8_chars("\xc0\xaf", 2), -1);         /* overlong */
    assert_int_equal(codec_utf8_chars("\xed\xa0\x80", 3), -1);     /* surrogate */
    assert_int_equal(codec_utf8_chars("\xf4\x90\x80\x80", 4), -1); /* above U+10FFFF */
    assert_int_equal(codec_utf8_chars("\xe2\x82", 2), -1);         /* truncated */
    assert_int_equal(codec_utf8_chars("\xff", 1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codec__b64url),
        cmocka_unit_test(codec__hex_and_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
