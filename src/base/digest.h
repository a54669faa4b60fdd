/* digest.h -- SHA-256 for the request path.
 *
 * On the Introspect path (service key, cache key, signature input) OpenSSL 3's EVP and
 * one-shot interfaces cost more in look-ups and allocations than hashing a token does;
 * digest_sha256() allocates nothing. Thread-safe.
 */
#ifndef P2A_DIGEST_H
#define P2A_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_SHA256_LEN 32

void digest_sha256(const void *data, size_t len, unsigned char out[DIGEST_SHA256_LEN]);
/* FNV-1a of a string: a bucket for a table or a limiter, never a secret's digest. */
uint32_t digest_fnv1a(const char *s);


#endif
