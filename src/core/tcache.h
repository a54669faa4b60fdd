/* tcache.h -- a worker's cache of tokens already decoded and verified.
 *
 * Keyed by the SHA-256 of the token, so it holds no token text. A hit skips the signature
 * check and the JSON parsing, nothing else: the caller still checks expiry, revocation,
 * kind and resource on every request. Bounded by entry count (within each set of four
 * ways the least recently used entry is replaced) and by the bytes the cached claims'
 * strings take (past the budget a new token is simply not cached). Belongs to one worker;
 * no locks.
 */
#ifndef P2A_TCACHE_H
#define P2A_TCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "token.h"

#define TCACHE_KEY_LEN 32

struct tcache;

/* max_entries is rounded down to a power of two (at least 16); max_bytes bounds the claims
 * data held. */
struct tcache *tcache_new(size_t max_entries, size_t max_bytes);
void tcache_free(struct tcache *c);

/* The claims cached for this digest, or NULL. Borrowed: valid until the next put. An entry
 * whose token expired before now is dropped and not returned. */
const struct token_claims *tcache_get(struct tcache *c, const unsigned char key[TCACHE_KEY_LEN],
                                      int64_t now);
/* Stores a copy of claims under key. */
void tcache_put(struct tcache *c, const unsigned char key[TCACHE_KEY_LEN],
                const struct token_claims *claims);

size_t tcache_count(const struct tcache *c);
/* Bytes of claims data held now (the slot table itself is fixed: entries x slot size). */
size_t tcache_bytes(const struct tcache *c);

#endif
