/* introspect.h -- the one introspection flow: is this token good, for whom, right now.
 *
 * Every adapter that answers the question calls this and renders the result its own way:
 * the Introspect RPC (protobuf, with a reason), RFC 7662 /introspect (JSON, active or not).
 * The order is the rule: the revocation view must be usable (else the caller fails closed);
 * a token is looked up in the cache of verified claims or decoded and verified (and cached);
 * a revoked jti is refused; then expiry, not-before, kind and audience are checked. Expiry
 * and revocation are checked on every call, cache hit or not.
 */
#ifndef P2A_INTROSPECT_H
#define P2A_INTROSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "revoke.h"
#include "token.h"

struct keyring;
struct metrics;
struct p2a_config;
struct tcache;

/* What one thread introspects with. cache and mx may be NULL. */
struct introspector {
    const struct p2a_config *cfg;
    const struct keyring *keys;
    struct revoke_set *revoked;
    struct tcache *cache;
    struct metrics *mx; /* cache hits and misses, verdicts */
};

struct introspection {
    enum token_verdict verdict;
    const struct token_claims *claims; /* when TV_ACTIVE: the cache's entry, or &owned */
    struct token_claims owned;
    enum revoke_state view;            /* with P2A_ERR_UNAVAILABLE: why */
    int64_t view_age_ms;
};

/* Fills out (deinit it after use, whatever the result). P2A_ERR_UNAVAILABLE when the
 * revocation view cannot be trusted (out->view, out->view_age_ms say why): answer nothing
 * about the token then. expected: TOKEN_KIND_NONE for any; resource: NULL or "" for any. */
p2a_err introspect(const struct introspector *x, const char *token, size_t len,
                   enum token_kind expected, const char *resource, int64_t now,
                   struct introspection *out);
void introspection_deinit(struct introspection *r);

#endif
