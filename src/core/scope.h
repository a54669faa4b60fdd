/* scope.h -- OAuth scopes (RFC 6749 3.3): the grammar, walking a list, what to grant.
 *
 * A scope list is scope-tokens (%x21 / %x23-5B / %x5D-7E) separated by single spaces, at
 * most SCOPE_MAX_LEN bytes: PAT scopes (IssueToken), requested and granted OAuth scopes,
 * PIPE2_AUTH_SCOPES are all held to it here. Whether a refresh may narrow a family's scope is
 * decided in one place, atomically with the rotation: the refresh script (oauth_store.c).
 */
#ifndef P2A_SCOPE_H
#define P2A_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

#define SCOPE_MAX_LEN 1000

/* NULL when s is a scope list (the empty one included), else why not: a constant sentence
 * naming scope. */
const char *scope_check(const char *s);
/* Walks a list: the token at *p into tok/len, *p moved past it; false at the end. */
bool scope_next(const char **p, const char **tok, size_t *len);
/* Whether the list holds the token tok[0..n). */
bool scope_has(const char *list, const char *tok, size_t n);
/* The scope to grant: the requested scopes we support, in our order; all we support when
 * none was requested or none of those requested is ours (clients send made-up scopes). */
void scope_grant(const char *supported, const char *requested, char *out, size_t outlen);

#endif
