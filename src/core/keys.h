/* keys.h -- the keyring: signing keys by kid, and the one algorithm each allows.
 *
 * Loaded once at start from PIPE2_AUTH_KEYS_DIR: every <kid>.pem file is an EC P-256 private
 * key (PKCS#8 or SEC1 PEM). The newest file (by modification time, then kid) signs; every key
 * verifies, so a key can be rotated in while tokens signed by the old one stay good. After
 * keys_load() the keyring is immutable and shared by all threads without locks.
 */
#ifndef P2A_KEYS_H
#define P2A_KEYS_H

#include <stddef.h>

#include "err.h"

#define KEYS_MAX_KID 64
#define KEYS_MAX 32

struct signing_key {
    char kid[KEYS_MAX_KID + 1];
    const char *alg;   /* the only JWS algorithm this key accepts: "ES256" */
    char *priv_pem;    /* PKCS#8 PEM, for signing; cleansed on free */
    size_t priv_pem_len;
    char *pub_pem;     /* SubjectPublicKeyInfo PEM: what pub is parsed from (tests use it too) */
    size_t pub_pem_len;
    void *pub;         /* EVP_PKEY of the public key */
    long long mtime;
};

struct keyring;

/* Loads every *.pem in dir. Errors (no keys, unreadable file, not P-256, bad kid) are
 * P2A_ERR_INVALID with a message in err naming the file. Caller frees with keys_free(). */
p2a_err keys_load(const char *dir, struct keyring **out, char *err, size_t errlen);
void keys_free(struct keyring *ring);

/* The key with this kid, or NULL. kid need not be NUL-terminated. */
const struct signing_key *keys_find(const struct keyring *ring, const char *kid, size_t len);
/* The key that signs new tokens; never NULL for a loaded keyring. */
const struct signing_key *keys_signer(const struct keyring *ring);
size_t keys_count(const struct keyring *ring);
/* A number no other keyring loaded by this process has: tells keyrings apart even when one
 * is allocated where a freed one was. */
unsigned long long keys_serial(const struct keyring *ring);

/* The public keys as a JWK Set (RFC 7517) JSON text; the caller frees it. */
char *keys_jwks(const struct keyring *ring);

#endif
