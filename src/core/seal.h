/* seal.h -- a short text sealed for a browser to carry and hand back unread and unchanged:
 * AES-256-GCM under a key derived (HKDF-SHA256) from a signing key's private key and a
 * purpose, so that every replica with the keyring opens what any of them sealed, and a text
 * sealed for one purpose opens for no other. The sealed value is "<kid>.<base64url(iv,
 * ciphertext, tag)>", the kid as additional data: it names the key, and after a rotation a
 * value sealed under a key that left the keyring no longer opens.
 *
 * What it is for: state that would otherwise be kept in Redis for anonymous clients (an
 * upstream sign-in in progress, facade/oauth_upstream.c), held by the browser instead.
 * Freshness is the caller's: put an expiry in the text and check it after opening.
 */
#ifndef P2A_SEAL_H
#define P2A_SEAL_H

#include <stddef.h>

#include "codec.h"
#include "keys.h"

#define SEAL_IV 12
#define SEAL_TAG 16
/* The length of a sealed value (its NUL aside) for a text of n bytes. */
#define SEAL_LEN(n) (KEYS_MAX_KID + 1 + CODEC_B64URL_LEN(SEAL_IV + (n) + SEAL_TAG))

/* text sealed under the keyring's signing key for purpose: a new string (the caller frees),
 * or NULL when the text is over max_text bytes or OpenSSL fails. */
char *seal_text(const struct keyring *ring, const char *purpose, const char *text, size_t max_text);
/* The text a value sealed for purpose holds (a new NUL-terminated string of *len bytes: the
 * caller cleanses and frees), or NULL: malformed, longer than max_text, another purpose's, a
 * key not in the keyring, tampered with. */
char *seal_open(const struct keyring *ring, const char *purpose, const char *value, size_t max_text,
                size_t *len);

#endif
