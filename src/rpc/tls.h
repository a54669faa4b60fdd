/* tls.h -- the RPC port's TLS context: certificate, key, TLS 1.2+, ALPN "h2" only. */
#ifndef P2A_TLS_H
#define P2A_TLS_H

#include <stddef.h>

#include "err.h"

typedef struct ssl_ctx_st SSL_CTX;

/* Loads cert (a PEM chain) and key. On error, a message naming the file goes to err. */
p2a_err tls_ctx_new(const char *cert, const char *key, SSL_CTX **out, char *err, size_t errlen);
void tls_ctx_free(SSL_CTX *ctx);

#endif
