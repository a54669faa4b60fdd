/* digest.h -- SHA-256 for the request path.
 *
 * OpenSSL 3's one-shot SHA256() looks the algorithm up in the provider store on every call;
 * on the Introspect path (service key, cache key, signature input) that look-up costs more
 * than hashing a token. digest_sha256() uses an EVP_MD fetched once. Thread-safe.
 */
#ifndef P2A_DIGEST_H
#define P2A_DIGEST_H

#include <stddef.h>

#define DIGEST_SHA256_LEN 32

void digest_sha256(const void *data, size_t len, unsigned char out[DIGEST_SHA256_LEN]);
/* Frees the calling thread's context; call before a thread that hashed exits. */
void digest_thread_cleanup(void);

#endif
