/* svckeys.h -- who may call the RPC service: service keys and their roles.
 *
 * The file holds one key a line, "<role> <sha256 hex of the key> [label]
 * [resource=<url>[,<url>]]", '#' comments and blank lines allowed. An introspect key with
 * resource= is bound to those resources: it learns about tokens for them only (the others
 * are WRONG_AUDIENCE, whatever resource its question names). Only digests are kept, so the
 * file and the process memory never hold a usable key. Immutable after load, shared by all
 * threads.
 */
#ifndef P2A_SVCKEYS_H
#define P2A_SVCKEYS_H

#include <stddef.h>

#include "err.h"

enum svc_role {
    SVC_ROLE_NONE = 0,       /* unknown key */
    SVC_ROLE_INTROSPECT = 1, /* may call Introspect */
    SVC_ROLE_ADMIN = 2,      /* may call every method */
};

#define SVCKEYS_MAX_KEY_LEN 512
#define SVCKEYS_MAX_BOUND 16

struct svckeys;

/* One key's entry (the file's line, less the digest). */
struct svc_key {
    enum svc_role role;
    char label[64];
    const char *const *resources; /* bound to these (canonical URLs); nresources 0: any */
    size_t nresources;
};

/* Loads path; a malformed line is P2A_ERR_INVALID with a message naming the line number. */
p2a_err svckeys_load(const char *path, struct svckeys **out, char *err, size_t errlen);
void svckeys_free(struct svckeys *keys);
size_t svckeys_count(const struct svckeys *keys);

/* The role of the key presented, SVC_ROLE_NONE when unknown. Compares digests in constant
 * time against every entry. entry, when not NULL, receives the key's entry (borrowed, as
 * long as keys), NULL when unknown. */
enum svc_role svckeys_check(const struct svckeys *keys, const char *key, size_t len,
                            const struct svc_key **entry);

#endif
