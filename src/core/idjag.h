/* idjag.h -- Enterprise-Managed Authorization: the rules of redeeming an Identity Assertion
 * JWT Authorization Grant (ID-JAG; draft-ietf-oauth-identity-assertion-authz-grant, as the
 * MCP extension io.modelcontextprotocol/enterprise-managed-authorization profiles it) at
 * /token with grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer.
 *
 * The company's identity provider has already decided that this person may use this client
 * with this MCP server: it signed a short-lived JWT saying so. We check that JWT completely
 * and issue an access token for the person, with no page shown. Trusted are only the issuers
 * of PIPE2_AUTH_ID_JAG_ISSUERS; an assertion naming any other is refused before anything is
 * fetched. Their keys come by discovery (facade/oauth_grant_jag.c fetches; oidc.h checks the
 * documents). Pure: no I/O.
 */
#ifndef P2A_IDJAG_H
#define P2A_IDJAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "oidc.h"

#define IDJAG_PROFILE "urn:ietf:params:oauth:grant-profile:id-jag"
#define IDJAG_TYP "oauth-id-jag+jwt"
#define IDJAG_MAX_LIFETIME_S 600 /* from iat to exp; an ID-JAG is minutes long */
#define IDJAG_MAX_JTI 128
#define IDJAG_DISCOVERY_MAX 600 /* an issuer's discovery URL */

struct p2a_config;

/* Whether the grant is on: PIPE2_AUTH_ID_JAG_ISSUERS names at least one issuer. */
bool idjag_enabled(const struct p2a_config *cfg);

/* The trusted issuer (one of cfg's, borrowed) that the assertion's iss names, read before any
 * signature is checked to know whose keys to use; NULL with why when the assertion is not a
 * JWT, over JWS_MAX_LEN, names no iss or one not trusted. */
const char *idjag_issuer(const struct p2a_config *cfg, const char *tok, const char **why);

/* The OpenID Connect discovery URL of issuer (Discovery 1.0 4: its trailing slash dropped,
 * then /.well-known/openid-configuration) into out; false when it does not fit. */
bool idjag_discovery_url(const char *issuer, char *out, size_t n);
/* The trusted issuer whose discovery URL is url (borrowed), or NULL. */
const char *idjag_issuer_of_discovery(const struct p2a_config *cfg, const char *url);

struct idjag_expect {
    const char *issuer;    /* the trusted issuer idjag_issuer() found */
    const char *client_id; /* the authenticated client */
    int64_t now;
    int skew_s;
};

/* Checks the assertion completely, the header before any key: typ oauth-id-jag+jwt; alg
 * RS256, ES256 or PS256 (none, HS* and the rest refused); a kid the key set holds, when the
 * header names one (else OIDC_UNKNOWN_KEY: fetch the set again, once); the signature; then
 * iss, aud (our issuer, with or without a trailing slash; one audience), client_id (the
 * authenticated client), resource (one of ours), exp, iat (not in the future; exp at most
 * IDJAG_MAX_LIFETIME_S after it), nbf when present, jti (1 to IDJAG_MAX_JTI printable ASCII),
 * sub (oidc_sub_valid), scope (a scope list, when present). OIDC_OK with *claims (new
 * reference); else a sentence in why for error_description (of the assertion at most its alg
 * name, cut to 16 bytes; never the token). */
enum oidc_result idjag_check(const struct p2a_config *cfg, const char *tok, json_t *jwks,
                             const struct idjag_expect *x, json_t **claims, char *why,
                             size_t whylen);

/* The configured resource the checked claims name (borrowed). */
const char *idjag_resource(const struct p2a_config *cfg, json_t *claims);

/* The scope to grant, into out: the requested scopes (none requested: those asserted, else the
 * resources' defaults) that the authorization server offers, never offline_access (no refresh
 * token comes of this grant). NULL when granted; else why: a requested scope the assertion's
 * scope claim does not hold, or, when it has none, one beyond the resources' defaults
 * (invalid_grant), or nothing left to grant (*invalid_scope set). */
const char *idjag_scope(const struct p2a_config *cfg, json_t *claims, const char *requested,
                        char *out, size_t outlen, bool *invalid_scope);

#endif
