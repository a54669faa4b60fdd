/* codec.h -- base64url (RFC 4648 5, unpadded) and hex, the encodings tokens, keys, codes
 * and digests travel in. Pure; every module that encodes or decodes uses these. */
#ifndef P2A_CODEC_H
#define P2A_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#define CODEC_B64URL_MAX_IN 12288 /* longest text codec_b64url_decode() takes */

/* Length of the base64url text of n bytes, without the NUL. */
#define CODEC_B64URL_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

static inline bool codec_b64url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* The value of a hex digit, or -1. */
static inline int codec_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Writes the unpadded base64url text of data[0..n) and a NUL into out
 * (CODEC_B64URL_LEN(n) + 1 bytes). Returns the text's length. */
size_t codec_b64url_encode(const void *data, size_t n, char *out);
/* Decodes unpadded base64url text into out. out needs 3 bytes for every 4 characters,
 * rounded up (the padding is decoded too): cap below that is -1, as are malformed text and
 * text longer than CODEC_B64URL_MAX_IN. Only the canonical text of some bytes decodes (RFC
 * 4648 3.5: the last character's bits past the data are zero), so that bytes have one
 * spelling: else a signature would have 16, each its own token to the cache. Returns the
 * decoded length. */
long codec_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap);
/* Lower-case hex of in[0..n) and a NUL into out (2n + 1 bytes). */
void codec_hex(const unsigned char *in, size_t n, char *out);

/* Number of code points in s[0..len) when it is valid UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF), else -1. */
long codec_utf8_chars(const char *s, size_t len);

#endif
