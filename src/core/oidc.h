/* oidc.h -- the rules of signing people in through an upstream OpenID Connect provider
 * (OpenID Connect Core 1.0 3.1.3.7, Discovery 1.0 4.3): what its discovery document and key
 * set must be, and every check of the ID token its token endpoint returns. Pure: no I/O;
 * the facade fetches (facade/oauth_upstream.c) and calls these.
 */
#ifndef P2A_OIDC_H
#define P2A_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define OIDC_MAX_KEYS 16       /* signing keys kept of a provider's set */
#define OIDC_MAX_SUB 255       /* OpenID Connect Core 2: at most 255 ASCII characters */
#define OIDC_MAX_IAT_AGE_S 600 /* an ID token issued longer ago than this is stale */
#define OIDC_MAX_NAME 64       /* a display name kept, in bytes (whole UTF-8 characters) */

struct p2a_config;

/* The discovery document of cfg's upstream issuer (new reference), or NULL with why: issuer
 * exactly the configured one; authorization, token and JWKS endpoints that are https (or
 * http on a loopback host, when the issuer is); "code" among response_types_supported and
 * S256 among code_challenge_methods_supported when the document lists them. */
json_t *oidc_discovery(const char *body, size_t len, const struct p2a_config *cfg, char *why,
                       size_t whylen);

/* The discovery document of an issuer whose keys alone we need (an ID-JAG issuer, idjag.h):
 * issuer exactly issuer, a jwks_uri that is https (or http on a loopback host, when the issuer
 * is). New reference, or NULL with why. */
json_t *oidc_keys_discovery(const char *body, size_t len, const char *issuer, char *why,
                            size_t whylen);

/* The provider's signing keys (new reference: {"keys":[...]}, the ones we can verify with:
 * EC P-256 or RSA, not "use":"enc", at most OIDC_MAX_KEYS), or NULL with why when none. */
json_t *oidc_jwks(const char *body, size_t len, char *why, size_t whylen);

/* Whether the key set holds a key named kid. */
bool oidc_jwks_has(json_t *jwks, const char *kid);
/* Whether sub is a subject we take: present, printable ASCII, at most OIDC_MAX_SUB. */
bool oidc_sub_valid(const char *sub);

enum oidc_result {
    OIDC_OK,
    OIDC_UNKNOWN_KEY, /* signed with a kid the key set does not hold: fetch it again, once */
    OIDC_REFUSED,
};

struct oidc_expect {
    const char *issuer, *client_id, *nonce;
    int64_t now;
    int skew_s;
};

/* Checks the ID token tok completely: a compact JWS with alg RS256 or ES256 only (none, HS*
 * and the rest refused before any key is looked at), signed by a key of jwks (its kid, when
 * the header names one); iss, aud (azp when several audiences, and whenever present), exp,
 * iat (neither in the future nor older than OIDC_MAX_IAT_AGE_S), nonce; sub present, ASCII,
 * at most OIDC_MAX_SUB. OIDC_OK with *claims (new reference); else why. */
enum oidc_result oidc_id_token_check(const char *tok, json_t *jwks, const struct oidc_expect *x,
                                     json_t **claims, char *why, size_t whylen);

/* The configured limits on who may sign in (PIPE2_AUTH_UPSTREAM_ALLOWED_DOMAINS: a verified
 * email in one of the domains; PIPE2_AUTH_UPSTREAM_REQUIRED_CLAIM name=value: the claim is
 * the value or an array holding it). NULL when claims pass; else why, for the person. */
const char *oidc_allowed(const struct p2a_config *cfg, json_t *claims);

/* The user id of the person: the configured prefix and the provider's sub; false when it
 * does not fit in n. */
bool oidc_user_id(const struct p2a_config *cfg, json_t *claims, char *out, size_t n);

/* The display name: the configured claim, else name, email, preferred_username, sub; control
 * characters dropped, cut to OIDC_MAX_NAME bytes on a character boundary. */
void oidc_display_name(const struct p2a_config *cfg, json_t *claims, char *out, size_t n);

#endif
