/* jtitab.h -- a table of token ids (jti) to one 64-bit number: the last-used marks
 * (jti -> time). The revocation set (revoke.c) has its own lock-free table; it shares the
 * hash and the bound on ids.
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

/* The longest token id (jti) anywhere: the tables' inline key, the revocation set's, the
 * claims'. Longer ids are not ours (we mint 22 characters). */
#define JTI_MAX_LEN 31

struct jti_entry {
    char jti[JTI_MAX_LEN + 1];
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
/* Removes every entry, keeping the allocation. */
void jtitab_clear(struct jtitab *t);

#endif
