/* codec.c -- see codec.h. Decoding leans on OpenSSL's base64 block decoder (base64url is
 * its alphabet with two characters swapped and the padding dropped); encoding writes the
 * unpadded text directly, so that out needs no room for padding. */
#include "codec.h"

#include <stdint.h>

#include <openssl/evp.h>

size_t codec_b64url_encode(const void *data, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *in = data;
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63], out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63], out[o++] = tab[v & 63];
    }
    if (n - i > 0) {
        unsigned v = (unsigned)in[i] << 16 | (n - i == 2 ? (unsigned)in[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18 & 63], out[o++] = tab[v >> 12 & 63];
        if (n - i == 2)
            out[o++] = tab[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

long codec_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    if (n % 4 == 1 || n > CODEC_B64URL_MAX_IN)
        return -1;
    size_t pad = (4 - n % 4) % 4;
    size_t padded = n + pad;
    if (padded / 4 * 3 > cap)
        return -1;
    char buf[CODEC_B64URL_MAX_IN + 4];
    for (size_t i = 0; i < n; i++) {
        if (!codec_b64url_char((unsigned char)in[i]))
            return -1;
        buf[i] = (char)(in[i] == '-' ? '+' : (in[i] == '_' ? '/' : in[i]));
    }
    if (n % 4 > 1) { /* 2 characters carry 8 bits of 12, 3 carry 16 of 18 */
        char last = buf[n - 1];
        int v = last >= 'A' && last <= 'Z'   ? last - 'A'
                : last >= 'a' && last <= 'z' ? last - 'a' + 26
                : last >= '0' && last <= '9' ? last - '0' + 52
                : last == '+'                ? 62
                                             : 63;
        if ((v & (n % 4 == 2 ? 15 : 3)) != 0)
            return -1;
    }
    for (size_t i = n; i < padded; i++)
        buf[i] = '=';
    int r = EVP_DecodeBlock(out, (const unsigned char *)buf, (int)padded);
    if (r < 0)
        return -1;
    return r - (long)pad;
}

void codec_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

long codec_utf8_chars(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    long chars = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            n = 1;
            cp = c;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4;
            cp = c & 0x07;
        } else {
            return -1;
        }
        if (i + n > len)
            return -1;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return -1;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        i += n;
        chars++;
    }
    return chars;
}
