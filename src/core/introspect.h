/* introspect.h -- the one introspection flow: is this token good, for whom, right now.
 *
 * Every adapter that answers the question calls this and renders the result its own way:
 * the Introspect RPC (protobuf, with a reason), RFC 7662 /introspect (JSON, active or not).
 * The order is the rule: the revocation view must be usable (else the caller fails closed);
 * a token is looked up in the cache of verified claims or decoded and verified (and cached);
 * a revoked jti is refused; then expiry, not-before, kind and audience are checked, and last
 * the scopes the call needs. Expiry and revocation are checked on every call, cache hit or
 * not.
 */
#ifndef P2A_INTROSPECT_H
#define P2A_INTROSPECT_H

#include <stdbool.h>
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
struct audit_refusals;

struct introspector {
    const struct p2a_config *cfg;
    const struct keyring *keys;
    struct revoke_set *revoked;
    struct tcache *cache;
    struct metrics *mx;             /* cache hits and misses, verdicts */
    struct audit_refusals *refused; /* expired or revoked tokens presented (NULL: not noted) */
};

struct introspection {
    enum token_verdict verdict;
    /* when TV_ACTIVE or TV_INSUFFICIENT_SCOPE: the cache's entry, or &owned */
    const struct token_claims *claims;
    struct token_claims owned;
    enum revoke_state view; /* with P2A_ERR_UNAVAILABLE: why */
    int64_t view_age_ms;
};

/* The question. */
struct introspect_query {
    const char *token;
    size_t len;
    enum token_kind expected;   /* TOKEN_KIND_NONE for any */
    const char *resource;       /* an audience the token must have; NULL or "" for any */
    const char *required_scope; /* scopes the token must hold all of; NULL or "" for none */
    /* The caller's own resources (an introspect key bound to them): the token must be for
     * one of them, whatever resource the question names. */
    const char *const *bound;
    size_t nbound; /* 0: any */
};

/* Fills out (deinit it after use, whatever the result). P2A_ERR_UNAVAILABLE when the
 * revocation view cannot be trusted (out->view, out->view_age_ms say why): answer nothing
 * about the token then. */
p2a_err introspect(const struct introspector *x, const struct introspect_query *q, int64_t now,
                   struct introspection *out);
void introspection_deinit(struct introspection *r);

/* ---- the answers, written once for every adapter ------------------------------------------ */

/* The kind as a gateway's header says it: "pat", "oauth" or "client". */
const char *introspect_kind_name(enum token_kind k);
/* What a gateway passes to the upstream about an active token (Envoy Check, forward-auth):
 * x-auth-subject, x-auth-client-id, x-auth-scope, x-auth-token-kind (introspect_kind_name),
 * x-auth-token-id, x-auth-expires (Unix seconds, written into exp), x-auth-actor (the client
 * that exchanged the token, RFC 8693 act.sub; empty otherwise, so that a client's own header
 * never reaches the upstream). Values point into c. */
#define INTROSPECT_ID_HEADERS 7
struct id_header {
    const char *name, *value;
};
void introspect_identity(const struct token_claims *c, char exp[24],
                         struct id_header out[INTROSPECT_ID_HEADERS]);

/* The status a gateway answers a refused request with: 403 for a missing scope or an
 * address no MCP server is served at (served false), else 401. */
int introspect_denial_status(enum token_verdict v, bool served);
/* The short JSON body of that refusal for a person: error, error_description and a hint
 * of what to do (token_verdict_hint). Its length, or -1 when cap is too small. */
long introspect_denial_json(enum token_verdict v, bool served, char *out, size_t cap);

/* RFC 7662: the flow and the answer, for every endpoint that speaks it. The JSON about q's
 * token goes to out: for an active token (and, when client_id is not NULL, one issued to
 * that client: RFC 7662 4) active, token_type, sub, iss, exp, iat, jti, aud, scope,
 * token_use ("pat" or "access"), client_id and pat_name when set, act (nested, RFC 8693 4.1)
 * for an exchanged token; otherwise (an opaque
 * token among them) {"active":false}. P2A_ERR_UNAVAILABLE, with out undefined, when the
 * revocation view cannot be trusted. cap: INTROSPECT_JSON_MAX. */
p2a_err introspect_rfc7662(const struct introspector *x, const struct introspect_query *q,
                           const char *client_id, int64_t now, char *out, size_t cap);
/* Room for any answer: a token is at most TOKEN_MAX_LEN bytes, its claims fewer. */
#define INTROSPECT_JSON_MAX (2 * TOKEN_MAX_LEN)
#define INTROSPECT_INACTIVE_JSON "{\"active\":false}"

#endif
