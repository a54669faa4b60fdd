/* revoke.h -- the process's view of revoked tokens, read on every Introspect.
 *
 * A set of jti -> the time the token would expire anyway. Shared by every worker thread:
 * readers take a read lock, writers (the thread applying revocations, the sweeper) a write
 * lock. An entry is dropped by revoke_sweep() once its token has expired, so the set stays
 * as small as the revoked tokens that could still be presented.
 *
 * The set also carries its readiness: it answers nothing useful until the whole set has
 * been loaded from the store at start, and revoke_ready() says so.
 */
#ifndef P2A_REVOKE_H
#define P2A_REVOKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jtitab.h"

#define REVOKE_MAX_JTI JTITAB_MAX_JTI

struct revoke_set;

struct revoke_set *revoke_new(void);
void revoke_free(struct revoke_set *set);

/* Records jti as revoked until exp. Returns true when it was not in the set before. A jti
 * longer than REVOKE_MAX_JTI cannot be one of ours and is refused (returns false). */
bool revoke_add(struct revoke_set *set, const char *jti, int64_t exp);
bool revoke_contains(struct revoke_set *set, const char *jti);
/* Drops every entry whose exp <= now; returns how many. */
size_t revoke_sweep(struct revoke_set *set, int64_t now);
size_t revoke_count(struct revoke_set *set);
/* Bytes the set holds (table and bookkeeping), for the memory figure per entry. */
size_t revoke_memory(struct revoke_set *set);

void revoke_set_ready(struct revoke_set *set, bool ready);
bool revoke_ready(struct revoke_set *set);

#endif
