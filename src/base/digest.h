/* digest.h -- SHA-256 and SipHash for the request path.
 *
 * On the Introspect path (service key, signature input) OpenSSL 3's EVP and one-shot
 * interfaces cost more in look-ups and allocations than hashing a token does;
 * digest_sha256() allocates nothing. digest_siphash128() is the keyed hash of the token
 * cache: under a secret key it is a pseudorandom function, at about two thirds of SHA-256's
 * cost here. Thread-safe.
 */
#ifndef P2A_DIGEST_H
#define P2A_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_SHA256_LEN 32

void digest_sha256(const void *data, size_t len, unsigned char out[DIGEST_SHA256_LEN]);

#define DIGEST_SIPHASH_KEY_LEN 16
#define DIGEST_SIPHASH128_LEN 16
/* SipHash-2-4 with its 128-bit output (Aumasson and Bernstein, 2012; the reference
 * implementation's vectors_sip128). Without the key, its outputs cannot be told from random
 * ones: two inputs agree by chance only (2^-128), so it may key a table whose hits are trusted,
 * as long as the key stays secret. Not a digest anyone else may recompute. */
void digest_siphash128(const unsigned char key[DIGEST_SIPHASH_KEY_LEN], const void *data,
                       size_t len, unsigned char out[DIGEST_SIPHASH128_LEN]);
/* FNV-1a of a string: a bucket for a table or a limiter, never a secret's digest. */
uint32_t digest_fnv1a(const char *s);

#endif
