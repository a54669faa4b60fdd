/* clients.h -- OAuth clients, with no I/O: what a registration may say (RFC 7591), what a
 * Client ID Metadata Document must say (draft-ietf-oauth-client-id-metadata-document), and
 * how a client proves itself with a signed assertion (private_key_jwt, RFC 7523).
 *
 * A client is one of two kinds, told apart by its id:
 *   - registered: "c_" and 128 random bits, its record in Redis (from /register or the
 *     RegisterClient RPC);
 *   - a metadata document: its id is an https URL that names its own metadata, fetched and
 *     checked here, never stored.
 * Either way the facade works from one record (JSON): redirect_uris, grant_types,
 * response_types, token_endpoint_auth_method, and when given client_name, scope,
 * application_type, jwks or jwks_uri.
 */
#ifndef P2A_CLIENTS_H
#define P2A_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

struct p2a_config;

#define OAUTH_MAX_CLIENT_ID 1024         /* a metadata document's URL; ours are 24 bytes */
#define OAUTH_MAX_ASSERTION_LIFETIME 300 /* seconds an assertion may live, iat or now to exp */

enum oauth_auth_method {
    OAUTH_AUTH_NONE,
    OAUTH_AUTH_POST,
    OAUTH_AUTH_BASIC,
    OAUTH_AUTH_PRIVATE_KEY_JWT,
};

/* RFC 7523 2.2 */
#define OAUTH_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* A request body as a JSON object (duplicate members refused), or NULL. */
json_t *oauth_json_object(const char *body, size_t len);
/* Whether v is the string s, or an array holding it (an aud, a grant_types list). */
bool oauth_json_names(json_t *v, const char *s);
/* The method a client record names. */
enum oauth_auth_method oauth_auth_method_parse(const char *s);

/* ---- registered clients ------------------------------------------------------------------- */

/* A client being registered: what to store and what to answer. */
struct oauth_client_reg {
    char client_id[OAUTH_MAX_CLIENT_ID + 1]; /* "c_<128 random bits>" */
    char *record;   /* kept in Redis: the metadata, the id, the secret's SHA-256 (JSON) */
    char *response; /* the RFC 7591 answer, with the secret itself (JSON) */
};

/* The registration rule, for /register (the parsed body) and the RegisterClient RPC (its
 * fields as an object): an RFC 7591 body (borrowed) checked and normalised -- client_name
 * (when given), redirect_uris, grant_types, response_types, token_endpoint_auth_method
 * (none, client_secret_post, client_secret_basic, or private_key_jwt with jwks or jwks_uri),
 * scope and application_type (when given; web means https redirect URIs only); grant and
 * response types we do not serve left out (an error only when none is left); unknown
 * members ignored -- and a new client made, with a secret for a client_secret_* one. On
 * failure *error is "invalid_redirect_uri", "invalid_client_metadata" (P2A_ERR_INVALID) or
 * "server_error" (P2A_ERR_INTERNAL), and desc says what. Release out with
 * oauth_client_reg_deinit(). */
p2a_err oauth_client_register(json_t *body, int64_t now, struct oauth_client_reg *out,
                              const char **error, char *desc, size_t desclen);
/* The same rule for an administrator (the RegisterClient RPC), who may register more:
 *   - grant_types: any of oauth_grant_names, and an unknown one is refused, not left out;
 *   - redirect_uris: required only with authorization_code;
 *   - token_endpoint_auth_method, when absent: private_key_jwt with jwks or jwks_uri, else
 *     client_secret_basic for a grant that needs a confidential client, else none;
 *   - resources (an array of strings): the audiences the client's own tokens may have, each
 *     one of cfg's resources (stored as the configured spelling); needed by
 *     client_credentials and token-exchange;
 *   - a confidential grant with method none, or keys without private_key_jwt: refused. */
p2a_err oauth_client_register_admin(json_t *body, const struct p2a_config *cfg, int64_t now,
                                    struct oauth_client_reg *out, const char **error, char *desc,
                                    size_t desclen);
void oauth_client_reg_deinit(struct oauth_client_reg *r);

/* ---- grant types (client_grants.c) -------------------------------------------------------- */

#define OAUTH_GRANT_CODE "authorization_code"
#define OAUTH_GRANT_REFRESH "refresh_token"
#define OAUTH_GRANT_CLIENT_CREDENTIALS "client_credentials"
#define OAUTH_GRANT_JWT_BEARER "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define OAUTH_GRANT_TOKEN_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
/* Every grant type a client may register, by its standard name: the first
 * OAUTH_GRANTS_PUBLIC anyone may (/register, metadata documents), the rest an administrator
 * only (they need a confidential client). */
#define OAUTH_GRANTS 5
#define OAUTH_GRANTS_PUBLIC 2
extern const char *const oauth_grant_names[OAUTH_GRANTS];
#define OAUTH_CLIENT_JWKS_MAX 16384 /* a registered JWK set, as JSON text */

/* Whether grant type gt needs a confidential client (one that authenticates). */
bool oauth_grant_confidential(const char *gt);
/* Whether a client record registered grant type gt (a record without grant_types predates
 * them: the code and refresh grants). */
bool oauth_client_has_grant(json_t *client, const char *gt);
/* The client's registered resource that resource names (token_resource_eq), or NULL. */
const char *oauth_client_resource(json_t *client, const char *resource);
/* For the registration rule: sets why when v lists a name not in oauth_grant_names. */
void oauth_client_grants_known(json_t *v, char *why, size_t whylen);
/* The method of an administrator's registration that names none (see above). */
const char *oauth_client_default_method(json_t *in, json_t *grants);
/* An administrator's registration beyond RFC 7591 (see above): in the body, out the record
 * being made (its method and keys already in); sets why when something does not hold. */
void oauth_client_admin_rules(json_t *in, json_t *out, const struct p2a_config *cfg, char *why,
                              size_t whylen);
/* Is s shaped like one of our client ids ("c_" and base64url, at most 64 bytes)? */
bool oauth_client_id_valid(const char *s);
/* Either kind of client id: one of ours, or a metadata document's URL. */
bool oauth_client_id_usable(const char *s);

/* ---- metadata documents ------------------------------------------------------------------- */

/* NULL when s may name a metadata document: an https URL with a host and a path, no
 * userinfo, fragment or dot segments, at most OAUTH_MAX_CLIENT_ID bytes of visible ASCII;
 * else why not. */
const char *oauth_cimd_id_check(const char *s);
/* The host of a client_id that names a metadata document (https://<host>/...): who vouches
 * for the client, shown beside its self-declared name. false for any other client_id. */
bool oauth_cimd_host(const char *client_id, char *out, size_t n);
/* The client record a fetched document makes (new reference), or NULL with why: a JSON
 * object whose client_id is url exactly, with client_name and redirect_uris, no
 * client_secret or client_secret_expires_at, token_endpoint_auth_method none or
 * private_key_jwt (when absent, the plural token_endpoint_auth_methods_supported decides:
 * private_key_jwt when listed and the document has jwks or jwks_uri, else none), and the
 * registration rule's checks for the rest (grant and response types we do not serve are
 * left out, not refused). */
json_t *oauth_cimd_client(const char *body, size_t len, const char *url, char *why, size_t whylen);

/* ---- client assertions (private_key_jwt) -------------------------------------------------- */

struct oauth_assertion {
    char jti[129]; /* to be used once: recorded until exp */
    int64_t exp;
};

/* The iss of an assertion, unverified: who it claims to be, to find its keys. false when
 * there is none (or it does not fit outlen). */
bool oauth_assertion_issuer(const char *jwt, char *out, size_t outlen);
/* Verifies a client assertion (RFC 7523 2.2, 3) for client_id with the client's keys
 * (a JWK set): ES256 or RS256; iss and sub the client; aud naming one of audiences (the
 * issuer, the endpoint); exp in the future and at most OAUTH_MAX_ASSERTION_LIFETIME ahead;
 * nbf and iat not in the future (skew_s allowed); a jti. NULL and *out filled, or why not
 * (a sentence for error_description). */
const char *oauth_assertion_check(const char *jwt, const char *client_id, json_t *jwks,
                                  const char *const *audiences, size_t naud, int64_t now,
                                  int skew_s, struct oauth_assertion *out);

#endif
