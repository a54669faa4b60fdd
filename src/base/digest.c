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

#include <openssl/sha.h>

#include "xalloc.h"

void digest_sha256(const void *data, size_t len, unsigned char out[DIGEST_SHA256_LEN])
{
    SHA256_CTX ctx;
    P2A_ASSERT(SHA256_Init(&ctx) == 1 && SHA256_Update(&ctx, data, len) == 1 &&
               SHA256_Final(out, &ctx) == 1);
}

uint32_t digest_fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}
