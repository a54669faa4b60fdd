/* scope.h -- OAuth scopes (RFC 6749 3.3): the grammar, walking a list, what to grant.
 *
 * A scope list is scope-tokens (%x21 / %x23-5B / %x5D-7E) separated by single spaces, at
 * most SCOPE_MAX_LEN bytes: PAT scopes (IssueToken), requested and granted OAuth scopes,
 * PIPE2_AUTH_SCOPES are all held to it here. Whether a refresh may narrow a family's scope is
 * decided in one place, atomically with the rotation: the refresh script
 * (src/store/lua/refresh.lua).
 */
#ifndef P2A_SCOPE_H
#define P2A_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

#define SCOPE_MAX_LEN 1000
/* SEP-2207: asks for a refresh token; offered by the AS, never by a resource. */
#define SCOPE_OFFLINE_ACCESS "offline_access"

/* NULL when s is a scope list (the empty one included), else why not: a constant sentence
 * naming scope. */
const char *scope_check(const char *s);
/* Walks a list: the token at *p into tok/len, *p moved past it; false at the end. */
bool scope_next(const char **p, const char **tok, size_t *len);
/* Whether the list holds the token tok[0..n). */
bool scope_has(const char *list, const char *tok, size_t n);
/* The scope to grant an authorization request (RFC 6749 3.3), into out: the requested
 * scopes the authorization server offers, in the offered order. The client's registered
 * scope is no ceiling (RFC 7591 3.2.1 lets a server grant other values): a client that
 * registered with the scope of a first challenge must still step up (SEP-2350); what the
 * deployment offers is the only bound. When nothing but offline_access was asked for that
 * we offer (no scope, or only ones we do not know: clients send made-up scopes), the offered
 * scopes the client registered are added, or when it registered none of them, the defaults
 * (the resources' scopes). False, with out empty, when nothing is left to grant:
 * invalid_scope. */
bool scope_grant(const char *offered, const char *defaults, const char *registered,
                 const char *requested, char *out, size_t outlen);
/* Appends to the list out the tokens of add it does not hold yet (truncated at outlen). */
void scope_union(char *out, size_t outlen, const char *add);
/* The scope a step-up challenge names (SEP-2350: a 403 insufficient_scope): the granted
 * scopes and the required ones, never offline_access (a grant's, not a resource's). */
void scope_step_up(const char *granted, const char *required, char *out, size_t outlen);
/* Whether every token of need is in have. */
bool scope_covers(const char *have, const char *need);

#endif
