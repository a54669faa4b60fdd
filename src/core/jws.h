/* jws.h -- other parties' keys and signatures: JSON Web Keys (RFC 7517) and compact JWS
 * (RFC 7515) with ES256, RS256 and PS256 (RFC 7518 3.3, 3.4, 3.5).
 *
 * What a client signs its RFC 7523 assertions with (private_key_jwt): its keys come from
 * its registration or metadata document (jwks) or from its jwks_uri. Our own tokens are
 * token.c's (ES256 with our keys, verified on the hot path); this is the general, colder
 * path. Pure: no I/O.
 */
#ifndef P2A_JWS_H
#define P2A_JWS_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

#define JWS_MAX_KEYS 8
#define JWS_MAX_LEN 8192 /* a compact JWS we read at all */

/* The public key a JWK holds: EC P-256 ("kty":"EC","crv":"P-256", x, y) or RSA of 2048 to
 * 8192 bits ("kty":"RSA", n, e). NULL with *why when it is neither, or holds private
 * parameters. */
EVP_PKEY *jws_key_from_jwk(json_t *jwk, const char **why);
/* NULL when jwks is a JWK set we can use: an object whose "keys" is 1 to JWS_MAX_KEYS
 * usable keys; else why not. */
const char *jws_keys_check(json_t *jwks);
/* Verifies the compact JWS tok against the keys of jwks: alg ES256 (an EC key), RS256 or
 * PS256 (an RSA key), the kid, when the header has one, naming the key; no "crit". The payload, a
 * JSON object (new reference), or NULL with *why. */
json_t *jws_verify(const char *tok, json_t *jwks, const char **why);
/* A base64url segment of a compact JWS decoded as a JSON object (new reference; duplicate
 * members refused), or NULL. The one way a token's header or claims are read. */
json_t *jws_segment_json(const char *seg, size_t n);
/* ES256's r || s as a DER ECDSA-Sig-Value (what OpenSSL verifies) into der; its length. */
size_t jws_es256_der(const unsigned char raw[64], unsigned char der[72]);

#endif
