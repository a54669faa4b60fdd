/* digest.c -- see digest.h. The EVP_MD is fetched on first use under pthread_once and kept
 * for the life of the process; each thread keeps one EVP_MD_CTX until it calls
 * digest_thread_cleanup(). */
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

/* one context per thread, reused: EVP_Digest() would allocate and free one per call */
static _Thread_local EVP_MD_CTX *ctx;

void digest_sha256(const void *data, size_t len, unsigned char out[DIGEST_SHA256_LEN])
{
    pthread_once(&once, fetch);
    if (ctx == NULL)
        ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    P2A_ASSERT(sha256 != NULL && ctx != NULL && EVP_DigestInit_ex2(ctx, sha256, NULL) == 1 &&
               EVP_DigestUpdate(ctx, data, len) == 1 && EVP_DigestFinal_ex(ctx, out, &n) == 1);
}

void digest_thread_cleanup(void)
{
    EVP_MD_CTX_free(ctx);
    ctx = NULL;
}
