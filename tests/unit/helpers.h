/* helpers.h -- shared by the unit tests: temp folders, keys, hand-made JWTs, an introspector. */
#ifndef P2A_TEST_HELPERS_H
#define P2A_TEST_HELPERS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "config.h"
#include "introspect.h"

/* A fresh folder under /tmp; th_rmtree() removes it and what it holds. */
char *th_tmpdir(void);
void th_rmtree(char *dir);
/* Writes a new P-256 key as <dir>/<kid>.pem; returns it (caller frees). */
EVP_PKEY *th_write_key(const char *dir, const char *kid);
/* A fresh folder holding one new P-256 key "k1", and the keyring loaded from it (aborts
 * when it does not load); th_keyring_free() frees all three and removes the folder. */
struct keyring;
void th_keyring(char **dir, EVP_PKEY **key, struct keyring **ring);
void th_keyring_free(char *dir, EVP_PKEY *key, struct keyring *ring);
/* An introspector as a worker holds one: a fresh keyring (th_keyring), an empty revocation
 * set never synced yet, a cache of 64 tokens, the issuer iss and a clock skew of 60 s.
 * th_introspector_free() frees all of it. */
struct th_introspector {
    char *dir;
    EVP_PKEY *key;
    struct keyring *ring;
    struct p2a_config cfg;
    struct revoke_set *revoked;
    struct tcache *cache;
    struct introspector x;
};
struct th_introspector *th_introspector_new(const char *iss);
void th_introspector_free(struct th_introspector *t);
/* Writes text to <dir>/<name>; returns the path (caller frees). */
char *th_write_file(const char *dir, const char *name, const char *text);

/* JWTs made by hand, so every field can be wrong. Callers free the result. */
char *th_b64url(const void *data, size_t len);
char *th_jwt_es256(EVP_PKEY *key, const char *header_json, const char *payload_json);
/* The same with the high s (n - s) when high_s: the twin that must be refused. */
char *th_jwt_es256_s(EVP_PKEY *key, const char *header_json, const char *payload_json, bool high_s);
char *th_jwt_hs256(const void *secret, size_t len, const char *header_json,
                   const char *payload_json);
char *th_jwt_unsigned(const char *header_json, const char *payload_json);
char *th_jwt_rs256(EVP_PKEY *key, const char *header_json, const char *payload_json);
char *th_jwt_ps256(EVP_PKEY *key, const char *header_json, const char *payload_json);
/* A key's public half as a JWK (EC P-256 or RSA) with kid: JSON text, caller frees. */
char *th_jwk_public(EVP_PKEY *key, const char *kid);

#endif
