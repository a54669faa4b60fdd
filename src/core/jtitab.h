/* jtitab.h -- a table of token ids (jti) to one 64-bit number, for the revocation set
 * (jti -> exp) and the last-used marks (jti -> time).
 *
 * Open addressing with linear probing over a power-of-two array of 40-byte entries, the jti
 * inline and NUL-padded, kept at most half full; an empty jti marks a free slot. Lookups
 * allocate nothing. No locking: the owner wraps it in the lock it needs.
 */
#ifndef P2A_JTITAB_H
#define P2A_JTITAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JTITAB_MAX_JTI 31 /* longer ids are not ours (we mint 22 characters) */

struct jti_entry {
    char jti[JTITAB_MAX_JTI + 1];
    int64_t val;
};

struct jtitab {
    struct jti_entry *v;
    size_t cap; /* power of two */
    size_t n;
    size_t min_cap;
};

/* FNV-1a of a NUL-terminated id: the probe start for this table and the revocation set. */
uint64_t jtitab_hash(const char *s);

void jtitab_init(struct jtitab *t, size_t min_cap);
void jtitab_deinit(struct jtitab *t);

/* Adds jti with val, or raises an existing entry's val to val if that is larger. Returns
 * true when jti was not there before. Refuses (false, nothing stored) an empty or overlong
 * jti, or a new one when the table already holds limit entries. */
bool jtitab_put_max(struct jtitab *t, const char *jti, int64_t val, size_t limit);
/* The entry for jti, or NULL. */
const struct jti_entry *jtitab_find(const struct jtitab *t, const char *jti);
/* Keeps only entries whose val > floor, in the smallest table that leaves them at most a
 * quarter full. Returns how many were dropped. */
size_t jtitab_prune(struct jtitab *t, int64_t floor);
/* Removes every entry, keeping the allocation. */
void jtitab_clear(struct jtitab *t);
size_t jtitab_bytes(const struct jtitab *t);

#endif
