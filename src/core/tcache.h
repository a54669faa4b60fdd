/* tcache.h -- a worker's cache of tokens already decoded and verified.
 *
 * Keyed by tcache_key(): SipHash-2-4-128 of the token under a secret key the cache draws at
 * its birth, so it holds no token text, and nobody without that key (which never leaves the
 * process) can make a token whose key meets another's but by chance (2^-128). A hit skips
 * the signature check and the JSON parsing, nothing else: the caller still checks expiry,
 * revocation, kind and resource on every request. Bounded by entry count (within each set
 * of four ways the least recently used entry is replaced) and by the bytes the cached
 * claims' strings take (past the budget a new token is simply not cached). Belongs to one
 * worker; no locks.
 */
#ifndef P2A_TCACHE_H
#define P2A_TCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "token.h"

#define TCACHE_KEY_LEN 16

struct tcache;

/* max_entries is rounded down to a power of two (at least 16); max_bytes bounds the claims
 * data held. */
struct tcache *tcache_new(size_t max_entries, size_t max_bytes);
void tcache_free(struct tcache *c);

/* The key the token tok (len bytes) is cached under, in this cache. */
void tcache_key(const struct tcache *c, const char *tok, size_t len,
                unsigned char key[TCACHE_KEY_LEN]);

/* The claims cached for this key, or NULL. Borrowed: valid until the next put. An entry
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
