/* oauth.h -- the rules of OAuth 2.1 as pipe2-auth applies them, with no I/O.
 *
 * Everything here is a pure function of its inputs (plus the random generator), so the HTTP
 * facade, the RPC service and the fuzz targets call the very same code:
 *   - form bodies and query strings (application/x-www-form-urlencoded), each parameter at
 *     most once (RFC 6749 3.1);
 *   - the Authorization header (Basic for clients, Bearer for service keys), cookies;
 *   - redirect URIs: what may be registered, and how a request's URI matches a registered
 *     one (exactly, except that a loopback URI's port is ignored: RFC 8252 7.3);
 *   - resource indicators (RFC 8707) against the configured MCP resources, scopes, PKCE S256;
 *   (client metadata -- registrations and metadata documents -- are clients.h's);
 *   - passwords: scrypt hashes, and what counts as weak.
 */
#ifndef P2A_OAUTH_H
#define P2A_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "scope.h"

struct p2a_config;

#define OAUTH_MAX_PARAMS 32
#define OAUTH_MAX_VALUE 10240 /* a token (8 KiB) and some */
#define OAUTH_MAX_URI 2000
#define OAUTH_MAX_RESOURCES 4096 /* the resources of one grant, space-separated */
#define OAUTH_MAX_REDIRECT_URIS 10
#define OAUTH_MAX_CLIENT_NAME 200 /* characters */
#define OAUTH_MAX_USERNAME 64
#define OAUTH_MIN_PASSWORD 10  /* characters */
#define OAUTH_MAX_PASSWORD 256 /* bytes */
#define OAUTH_SECRET_BYTES 32  /* codes, refresh tokens, secrets, sessions: 256 bits */
#define OAUTH_SECRET_LEN 43    /* their base64url length */
#define OAUTH_HEX_LEN 64       /* SHA-256 in hex: how secrets are kept in Redis */
#define OAUTH_PASSWORD_HASH_MAX 160

/* ---- forms -------------------------------------------------------------------------------- */

struct oauth_form {
    size_t n;
    char *names[OAUTH_MAX_PARAMS];
    char *values[OAUTH_MAX_PARAMS];
    char why[96]; /* why parsing failed */
};

/* Parses s (len bytes). Refuses bad percent-escapes, NUL, a parameter given twice (but
 * resource: RFC 8707 allows several, kept as one value, space-separated), more than
 * OAUTH_MAX_PARAMS parameters and values over OAUTH_MAX_VALUE bytes, with f->why set.
 * Release with oauth_form_free() in every case. */
p2a_err oauth_form_parse(const char *s, size_t len, struct oauth_form *f);
/* The value of name, or NULL when absent. An empty value counts as absent (RFC 6749 3.1). */
const char *oauth_form_get(const struct oauth_form *f, const char *name);
void oauth_form_free(struct oauth_form *f);

/* ---- errors ------------------------------------------------------------------------------- */

/* The RFC 6749 5.2 error body, {"error", "error_description"} (desc escaped: it may quote a
 * client), into out; a desc too long for it is left out. Every HTTP endpoint writes its
 * JSON errors with this. */
#define OAUTH_ERROR_JSON_MAX 1024
void oauth_error_json(const char *error, const char *desc, char out[OAUTH_ERROR_JSON_MAX]);

/* ---- headers ------------------------------------------------------------------------------ */

/* "Basic base64(id:secret)": both parts are percent-decoded when they hold valid escapes
 * (RFC 6749 2.3.1 form-encodes them; many clients do not). false when malformed. */
bool oauth_basic_parse(const char *header, char *id, size_t idlen, char *secret, size_t secretlen);
/* "Bearer <token>": the token and its length, or NULL. */
const char *oauth_bearer(const char *header, size_t *len);
/* Copies the value of cookie name from a Cookie header; false when absent or too long. */
bool oauth_cookie_get(const char *header, const char *name, char *out, size_t outlen);

/* ---- redirect URIs, resources, scopes, PKCE ----------------------------------------------- */

/* May this URI be registered? NULL when yes, else why not (a constant sentence). https,
 * http on a loopback host (localhost, 127.0.0.1, [::1]), or a private-use scheme of a
 * native app ("cursor://...", "com.example.app:/cb"); never javascript:, data:, file: and
 * the like, userinfo, or a fragment. */
const char *oauth_redirect_uri_check(const char *uri);
/* Does the request's URI match this registered one? Exact string equality, except that
 * for http on a loopback host the port is ignored (clients bind ephemeral ports). */
bool oauth_redirect_uri_match(const char *registered, const char *given);
/* Is the redirect_uri of a code exchange the one its authorization request used (RFC 6749
 * 4.1.3)? Identical, or differing only in an empty path written "/" (strict clients such as
 * openid-client send the URI the browser landed on). */
bool oauth_redirect_uri_same(const char *asked, const char *given);
/* The configured resource that s names (case of scheme and host and one trailing slash
 * aside), or NULL. */
const char *oauth_resource_find(const struct p2a_config *cfg, const char *s);
/* A list of resources (space-separated, as a form holds several) as the configured ones
 * they name, space-separated, into out: false when one is not served (or the list is empty
 * or does not fit). */
bool oauth_resources_canon(const struct p2a_config *cfg, const char *list, char *out,
                           size_t outlen);
/* Whether every resource of want (canonical) is one of have (canonical): a narrowing. */
bool oauth_resources_within(const char *have, const char *want);
/* code_verifier: 43 to 128 of [A-Za-z0-9-._~] (RFC 7636 4.1). */
bool oauth_pkce_verifier_valid(const char *v);
/* code_challenge for S256: 43 base64url characters. */
bool oauth_pkce_challenge_valid(const char *c);
/* BASE64URL(SHA256(verifier)) == challenge, in constant time. */
bool oauth_pkce_s256_ok(const char *verifier, const char *challenge);
/* The S256 challenge of verifier (RFC 7636 4.2) into out. */
void oauth_pkce_s256(const char *verifier, char out[OAUTH_SECRET_LEN + 1]);

/* ---- secrets ------------------------------------------------------------------------------ */

/* OAUTH_SECRET_BYTES random bytes as base64url into out (OAUTH_SECRET_LEN + 1 bytes). */
p2a_err oauth_random_secret(char out[OAUTH_SECRET_LEN + 1]);
/* SHA-256 of s in lower-case hex. */
void oauth_digest_hex(const char *s, size_t len, char out[OAUTH_HEX_LEN + 1]);
/* a == b in time that depends only on the lengths. */
bool oauth_secret_eq(const char *a, const char *b);

/* ---- users -------------------------------------------------------------------------------- */

/* NULL when the username is acceptable (1 to 64 of [A-Za-z0-9._@-]), else why not. */
const char *oauth_username_check(const char *username);
/* NULL when the password may be used by this user, else why not: too short, too long,
 * not UTF-8, the username, one repeated character, or a well-known password. */
const char *oauth_password_check(const char *username, const char *password);
/* "$scrypt$ln=15,r=8,p=1$<salt>$<hash>" (base64url) into out. */
p2a_err oauth_password_hash(const char *password, char *out, size_t outlen);
/* Does password match stored? false also when stored is malformed. */
bool oauth_password_verify(const char *password, const char *stored);

#endif
