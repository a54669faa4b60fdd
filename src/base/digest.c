/* digest.c -- see digest.h.
 *
 * OpenSSL 3's EVP interface allocates a fresh algorithm context on every EVP_DigestInit,
 * and its one-shot SHA256() also looks the algorithm up in the provider store each time.
 * The SHA256_* functions, deprecated for new code that wants provider choice, run the same
 * assembly with the context on our stack: nothing allocated, nothing looked up. We want
 * exactly SHA-256 from the default implementation here, so we use them on purpose.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "digest.h"

#include <endian.h>
#include <string.h>

#include <openssl/sha.h>

#include "xalloc.h"

void digest_sha256(const void *data, size_t len, unsigned char out[DIGEST_SHA256_LEN])
{
    SHA256_CTX ctx;
    P2A_ASSERT(SHA256_Init(&ctx) == 1 && SHA256_Update(&ctx, data, len) == 1 &&
               SHA256_Final(out, &ctx) == 1);
}

/* ---- SipHash-2-4-128 ---------------------------------------------------------------------- */

static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static inline uint64_t le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v)); /* one load; le64toh() is nothing on little-endian machines */
    return le64toh(v);
}

static inline void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1, v1 = rotl(v1, 13), v1 ^= v0, v0 = rotl(v0, 32);                                  \
        v2 += v3, v3 = rotl(v3, 16), v3 ^= v2;                                                     \
        v0 += v3, v3 = rotl(v3, 21), v3 ^= v0;                                                     \
        v2 += v1, v1 = rotl(v1, 17), v1 ^= v2, v2 = rotl(v2, 32);                                  \
    } while (0)

void digest_siphash128(const unsigned char key[DIGEST_SIPHASH_KEY_LEN], const void *data,
                       size_t len, unsigned char out[DIGEST_SIPHASH128_LEN])
{
    const unsigned char *in = data;
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1 ^ 0xee,
             v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    const unsigned char *end = in + (len & ~(size_t)7);
    for (; in != end; in += 8) {
        uint64_t m = le64(in);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xee;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    put_le64(out, v0 ^ v1 ^ v2 ^ v3);
    v1 ^= 0xdd;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    put_le64(out + 8, v0 ^ v1 ^ v2 ^ v3);
}

uint32_t digest_fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}
