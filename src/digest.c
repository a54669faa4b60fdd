/* digest.c -- see digest.h. The EVP_MD is fetched on first use under pthread_once and kept
 * for the life of the process (OpenSSL frees it at exit). */
#include "digest.h"

#include <pthread.h>

#include <openssl/evp.h>

#include "xalloc.h"

static EVP_MD *sha256;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void free_md(void) __attribute__((destructor));
static void free_md(void)
{
    EVP_MD_free(sha256);
    sha256 = NULL;
}

void digest_sha256(const void *data, size_t len, unsigned char out[DIGEST_SHA256_LEN])
{
    pthread_once(&once, fetch);
    unsigned int n = 0;
    P2A_ASSERT(sha256 != NULL && EVP_Digest(data, len, out, &n, sha256, NULL) == 1);
}
