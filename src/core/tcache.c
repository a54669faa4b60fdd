/* tcache.c -- the verified-token cache (see tcache.h).
 *
 * A set-associative table of 32-byte slots: the first bytes of the key pick a set of WAYS
 * slots, the whole key is compared within it. A slot points at the claims packed in
 * one block (token_claims_pack), so a cached token costs its slot plus one allocation. The
 * cached path allocates nothing; a put allocates one block and frees the one it replaces.
 */
#include "tcache.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "digest.h"
#include "xalloc.h"

#define WAYS 4

struct slot {
    unsigned char key[TCACHE_KEY_LEN];
    uint64_t used;               /* 0: empty; else the tick of the last hit or put */
    struct token_claims *claims; /* packed */
};

struct tcache {
    unsigned char secret[DIGEST_SIPHASH_KEY_LEN]; /* drawn at tcache_new; never leaves */
    struct slot *slots;
    size_t nsets; /* power of two */
    size_t count;
    size_t bytes, max_bytes;
    uint64_t tick;
};

#define BLOCK_OVERHEAD 16 /* what malloc adds to each block, roughly */

static size_t block_bytes(const struct token_claims *claims)
{
    return sizeof(*claims) + claims->blob_len + BLOCK_OVERHEAD;
}

static void drop(struct tcache *c, struct slot *s)
{
    c->bytes -= block_bytes(s->claims);
    free(s->claims);
    s->claims = NULL;
    s->used = 0;
    c->count--;
}

struct tcache *tcache_new(size_t max_entries, size_t max_bytes)
{
    struct tcache *c = xcalloc(1, sizeof(*c));
    P2A_ASSERT(RAND_bytes(c->secret, sizeof(c->secret)) == 1);
    c->max_bytes = max_bytes;
    size_t sets = 4;
    while (sets * 2 * WAYS <= max_entries)
        sets *= 2;
    c->nsets = sets;
    c->slots = xcalloc(sets * WAYS, sizeof(struct slot));
    return c;
}

void tcache_free(struct tcache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nsets * WAYS; i++)
        free(c->slots[i].claims);
    free(c->slots);
    OPENSSL_cleanse(c->secret, sizeof(c->secret));
    free(c);
}

void tcache_key(const struct tcache *c, const char *tok, size_t len,
                unsigned char key[TCACHE_KEY_LEN])
{
    digest_siphash128(c->secret, tok, len, key);
}

static struct slot *set_of(struct tcache *c, const unsigned char key[TCACHE_KEY_LEN])
{
    uint64_t h;
    memcpy(&h, key, sizeof(h));
    return &c->slots[(h & (c->nsets - 1)) * WAYS];
}

const struct token_claims *tcache_get(struct tcache *c, const unsigned char key[TCACHE_KEY_LEN],
                                      int64_t now)
{
    struct slot *s = set_of(c, key);
    for (int w = 0; w < WAYS; w++) {
        if (s[w].used && memcmp(s[w].key, key, TCACHE_KEY_LEN) == 0) {
            if (s[w].claims->exp <= now) {
                drop(c, &s[w]);
                return NULL;
            }
            s[w].used = ++c->tick;
            return s[w].claims;
        }
    }
    return NULL;
}

void tcache_put(struct tcache *c, const unsigned char key[TCACHE_KEY_LEN],
                const struct token_claims *claims)
{
    struct slot *s = set_of(c, key);
    struct slot *victim = &s[0];
    for (int w = 0; w < WAYS; w++) {
        if (s[w].used && memcmp(s[w].key, key, TCACHE_KEY_LEN) == 0) {
            victim = &s[w];
            break;
        }
        if (s[w].used < victim->used)
            victim = &s[w];
    }
    if (victim->used)
        drop(c, victim);
    if (c->bytes + block_bytes(claims) > c->max_bytes)
        return; /* over the byte budget: this one goes uncached */
    memcpy(victim->key, key, TCACHE_KEY_LEN);
    victim->claims = token_claims_pack(claims);
    victim->used = ++c->tick;
    c->count++;
    c->bytes += block_bytes(claims);
}

size_t tcache_bytes(const struct tcache *c)
{
    return c->bytes;
}

size_t tcache_count(const struct tcache *c)
{
    return c->count;
}
