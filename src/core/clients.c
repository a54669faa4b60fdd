/* clients.c -- OAuth clients without I/O (see clients.h). */
#include "clients.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "codec.h"
#include "jws.h"
#include "oauth.h"
#include "url.h"

/* ---- registered clients ------------------------------------------------------------------- */

enum oauth_auth_method oauth_auth_method_parse(const char *s)
{
    if (s != NULL && strcmp(s, "none") == 0)
        return OAUTH_AUTH_NONE;
    if (s != NULL && strcmp(s, "client_secret_post") == 0)
        return OAUTH_AUTH_POST;
    if (s != NULL && strcmp(s, "private_key_jwt") == 0)
        return OAUTH_AUTH_PRIVATE_KEY_JWT;
    return OAUTH_AUTH_BASIC;
}

bool oauth_client_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 64 || strncmp(s, "c_", 2) != 0)
        return false;
    for (size_t i = 2; i < n; i++)
        if (!codec_b64url_char((unsigned char)s[i]))
            return false;
    return true;
}

static p2a_err meta_fail(const char **error, const char *code, char *desc, size_t desclen,
                         const char *what)
{
    *error = code;
    snprintf(desc, desclen, "%s", what);
    return P2A_ERR_INVALID;
}

bool oauth_json_names(json_t *v, const char *s)
{
    if (json_is_string(v))
        return strcmp(json_string_value(v), s) == 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (json_is_string(e) && strcmp(json_string_value(e), s) == 0)
            return true;
    }
    return false;
}

/* A member that must be an array of strings; fills *out (new reference) with those that are
 * allowed, in order. Values we do not serve are left out, not refused (RFC 7591 3.2.1 lets a
 * server replace requested values): Claude's document lists the jwt-bearer grant beside the
 * code grant. NULL, or why the member cannot be used (nothing allowed left among them). */
static const char *string_list(json_t *v, const char *const *allowed, size_t nallowed, json_t **out)
{
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 8)
        return "must be a non-empty array of at most 8 strings";
    *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *s = json_string_value(e);
        if (s == NULL) {
            json_decref(*out);
            *out = NULL;
            return "must be a non-empty array of at most 8 strings";
        }
        for (size_t k = 0; k < nallowed; k++)
            if (strcmp(s, allowed[k]) == 0 && !oauth_json_names(*out, s))
                json_array_append_new(*out, json_string(s));
    }
    if (json_array_size(*out) > 0)
        return NULL;
    json_decref(*out);
    *out = NULL;
    return "names none that this server serves";
}

json_t *oauth_json_object(const char *body, size_t len)
{
    json_error_t jerr;
    json_t *in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(in)) {
        json_decref(in);
        return NULL;
    }
    return in;
}

/* jwks or jwks_uri (RFC 7591 2): one of them for private_key_jwt, copied into out; ignored
 * otherwise (keys a client will not sign with are of no use to us). Sets why when they do
 * not fit. */
static void client_keys(json_t *in, json_t *out, enum oauth_auth_method m, char *why, size_t whylen)
{
    json_t *jwks = json_object_get(in, "jwks"), *uri = json_object_get(in, "jwks_uri");
    if (m != OAUTH_AUTH_PRIVATE_KEY_JWT)
        return;
    if ((jwks == NULL) == (uri == NULL)) {
        snprintf(why, whylen, "private_key_jwt needs one of jwks and jwks_uri");
        return;
    }
    if (jwks != NULL) {
        const char *bad = jws_keys_check(jwks);
        if (bad != NULL)
            snprintf(why, whylen, "jwks: %s", bad);
        else
            json_object_set(out, "jwks", jwks);
        return;
    }
    const char *u = json_string_value(uri);
    if (u == NULL || strlen(u) > OAUTH_MAX_URI || strncmp(u, "https://", 8) != 0 || !url_is_http(u))
        snprintf(why, whylen, "jwks_uri must be an https URL");
    else
        json_object_set_new(out, "jwks_uri", json_string(u));
}

/* RFC 7591 metadata checked and normalised into *meta (see oauth_client_register; admin: the
 * configuration of oauth_client_register_admin, else NULL). One block per member, in the
 * order of RFC 7591 2 (grant types first: redirect URIs depend on them): long, but each
 * block stands alone. */
static p2a_err client_metadata(json_t *in, const struct p2a_config *admin, json_t **meta,
                               const char **error, char *desc, size_t desclen)
{
    static const char *const responses[] = {"code"};
    if (!json_is_object(in))
        return meta_fail(error, "invalid_client_metadata", desc, desclen,
                         "the body must be a JSON object");
    json_t *out = json_object();
    char why[200] = "";
    const char *code = "invalid_client_metadata";

    json_t *list = NULL;
    json_t *v = json_object_get(in, "grant_types");
    if (v != NULL && admin != NULL)
        oauth_client_grants_known(v, why, sizeof(why));
    if (why[0] == '\0' && v != NULL) {
        const char *bad = string_list(v, oauth_grant_names,
                                      admin != NULL ? OAUTH_GRANTS : OAUTH_GRANTS_PUBLIC, &list);
        if (bad != NULL)
            snprintf(why, sizeof(why), "grant_types %s (authorization_code, refresh_token)", bad);
    } else if (why[0] == '\0') {
        list = json_pack("[ss]", "authorization_code", "refresh_token");
    }
    if (list != NULL)
        json_object_set_new(out, "grant_types", list);
    bool code_grant = oauth_json_names(json_object_get(out, "grant_types"), "authorization_code");

    json_t *uris = json_object_get(in, "redirect_uris");
    if (why[0] != '\0' || (!code_grant && admin != NULL && uris == NULL)) {
        /* a client of other grants alone redirects nowhere */
    } else if (!json_is_array(uris) || json_array_size(uris) == 0 ||
               json_array_size(uris) > OAUTH_MAX_REDIRECT_URIS) {
        code = "invalid_redirect_uri";
        snprintf(why, sizeof(why), "redirect_uris must be an array of 1 to %d URIs",
                 OAUTH_MAX_REDIRECT_URIS);
    } else {
        json_t *copy = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(uris, i, e)
        {
            const char *u = json_string_value(e);
            const char *bad = u ? oauth_redirect_uri_check(u) : "must be a string";
            if (bad != NULL && why[0] == '\0') {
                code = "invalid_redirect_uri";
                snprintf(why, sizeof(why), "redirect_uris[%zu]: %s", i, bad);
            }
            if (bad == NULL)
                json_array_append_new(copy, json_string(u));
        }
        json_object_set_new(out, "redirect_uris", copy);
    }

    v = json_object_get(in, "token_endpoint_auth_method");
    const char *method = "client_secret_basic"; /* RFC 7591 2 */
    if (admin != NULL && v == NULL)
        method = oauth_client_default_method(in, json_object_get(out, "grant_types"));
    if (why[0] == '\0' && v != NULL) {
        method = json_string_value(v);
        if (method == NULL ||
            (strcmp(method, "none") != 0 && strcmp(method, "client_secret_post") != 0 &&
             strcmp(method, "client_secret_basic") != 0 && strcmp(method, "private_key_jwt") != 0))
            snprintf(why, sizeof(why),
                     "token_endpoint_auth_method must be none, client_secret_post, "
                     "client_secret_basic or private_key_jwt");
    }
    if (why[0] == '\0')
        json_object_set_new(out, "token_endpoint_auth_method", json_string(method));
    if (why[0] == '\0')
        client_keys(in, out, oauth_auth_method_parse(method), why, sizeof(why));
    if (why[0] == '\0' && admin != NULL)
        oauth_client_admin_rules(in, out, admin, why, sizeof(why));

    list = NULL;
    v = json_object_get(in, "response_types");
    if (why[0] == '\0' && !code_grant && admin != NULL) {
        /* no code grant, no response type */
    } else if (why[0] == '\0' && v != NULL) {
        const char *bad = string_list(v, responses, 1, &list);
        if (bad != NULL)
            snprintf(why, sizeof(why), "response_types %s (code)", bad);
    } else if (why[0] == '\0') {
        list = json_pack("[s]", "code");
    }
    if (list != NULL)
        json_object_set_new(out, "response_types", list);

    v = json_object_get(in, "client_name");
    if (why[0] == '\0' && v != NULL) {
        const char *name = json_string_value(v);
        long chars = name ? codec_utf8_chars(name, strlen(name)) : -1;
        if (chars < 0 || chars > OAUTH_MAX_CLIENT_NAME)
            snprintf(why, sizeof(why), "client_name must be a string of at most %d characters",
                     OAUTH_MAX_CLIENT_NAME);
        else if (chars > 0)
            json_object_set_new(out, "client_name", json_string(name));
    }
    v = json_object_get(in, "scope");
    if (why[0] == '\0' && v != NULL) {
        const char *s = json_string_value(v);
        if (s == NULL || scope_check(s) != NULL)
            snprintf(why, sizeof(why), "scope must be space-separated scope tokens");
        else if (s[0])
            json_object_set_new(out, "scope", json_string(s));
    }
    v = json_object_get(in, "application_type");
    if (why[0] == '\0' && v != NULL) {
        const char *s = json_string_value(v);
        if (s == NULL || (strcmp(s, "native") != 0 && strcmp(s, "web") != 0))
            snprintf(why, sizeof(why), "application_type must be native or web");
        else
            json_object_set_new(out, "application_type", json_string(s));
    }
    if (why[0] != '\0') {
        json_decref(out);
        return meta_fail(error, code, desc, desclen, why);
    }
    *meta = out;
    return P2A_OK;
}

/* OpenID Connect Registration 2 (application_type), as RFC 8252 8.4 reads it: a web
 * application redirects to https only; a native one may also use loopback http and its own
 * scheme (the default, when unsaid, accepts both: most MCP clients send none). NULL when
 * the redirect URIs suit the type. */
static const char *application_type_why(json_t *meta)
{
    const char *type = json_string_value(json_object_get(meta, "application_type"));
    if (type == NULL || strcmp(type, "web") != 0)
        return NULL;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(meta, "redirect_uris"), i, e)
    {
        struct url_parts u;
        if (!url_split(json_string_value(e), &u) || !url_scheme_is(&u, "https"))
            return "a web application (application_type web) redirects to https URIs only";
    }
    return NULL;
}

static p2a_err client_new(json_t *m, int64_t now, char client_id[OAUTH_MAX_CLIENT_ID + 1],
                          char **record, char **response)
{
    unsigned char r[16];
    char id64[24];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return P2A_ERR_INTERNAL;
    codec_b64url_encode(r, sizeof(r), id64);
    snprintf(client_id, OAUTH_MAX_CLIENT_ID + 1, "c_%s", id64);
    json_t *rec = json_deep_copy(m), *resp = json_deep_copy(m);
    json_object_set_new(rec, "client_id", json_string(client_id));
    json_object_set_new(resp, "client_id", json_string(client_id));
    json_object_set_new(rec, "client_id_issued_at", json_integer(now));
    json_object_set_new(resp, "client_id_issued_at", json_integer(now));
    enum oauth_auth_method method = oauth_auth_method_parse(
        json_string_value(json_object_get(m, "token_endpoint_auth_method")));
    if (method == OAUTH_AUTH_POST || method == OAUTH_AUTH_BASIC) {
        char secret[OAUTH_SECRET_LEN + 1], digest[OAUTH_HEX_LEN + 1];
        if (oauth_random_secret(secret) != P2A_OK) {
            json_decref(rec);
            json_decref(resp);
            return P2A_ERR_INTERNAL;
        }
        oauth_digest_hex(secret, strlen(secret), digest);
        json_object_set_new(rec, "client_secret_sha256", json_string(digest));
        json_object_set_new(resp, "client_secret", json_string(secret));
        json_object_set_new(resp, "client_secret_expires_at", json_integer(0));
        OPENSSL_cleanse(secret, sizeof(secret));
    }
    *record = json_dumps(rec, JSON_COMPACT);
    *response = json_dumps(resp, JSON_COMPACT);
    json_decref(rec);
    json_decref(resp);
    return *record != NULL && *response != NULL ? P2A_OK : P2A_ERR_INTERNAL;
}

static p2a_err client_register(json_t *body, const struct p2a_config *admin, int64_t now,
                               struct oauth_client_reg *out, const char **error, char *desc,
                               size_t desclen)
{
    memset(out, 0, sizeof(*out));
    json_t *meta = NULL;
    p2a_err e = client_metadata(body, admin, &meta, error, desc, desclen);
    if (e != P2A_OK)
        return e;
    const char *why = application_type_why(meta);
    if (why != NULL) {
        json_decref(meta);
        return meta_fail(error, "invalid_redirect_uri", desc, desclen, why);
    }
    e = client_new(meta, now, out->client_id, &out->record, &out->response);
    json_decref(meta);
    if (e != P2A_OK) {
        oauth_client_reg_deinit(out);
        *error = "server_error";
        snprintf(desc, desclen, "could not create the client");
        return P2A_ERR_INTERNAL;
    }
    return P2A_OK;
}

p2a_err oauth_client_register(json_t *body, int64_t now, struct oauth_client_reg *out,
                              const char **error, char *desc, size_t desclen)
{
    return client_register(body, NULL, now, out, error, desc, desclen);
}

p2a_err oauth_client_register_admin(json_t *body, const struct p2a_config *cfg, int64_t now,
                                    struct oauth_client_reg *out, const char **error, char *desc,
                                    size_t desclen)
{
    return client_register(body, cfg, now, out, error, desc, desclen);
}

void oauth_client_reg_deinit(struct oauth_client_reg *r)
{
    free(r->record);
    if (r->response != NULL) {
        OPENSSL_cleanse(r->response, strlen(r->response));
        free(r->response);
    }
    r->record = r->response = NULL;
}

bool oauth_client_id_usable(const char *s)
{
    return oauth_client_id_valid(s) || oauth_cimd_id_check(s) == NULL;
}

/* ---- metadata documents ------------------------------------------------------------------- */

bool oauth_cimd_host(const char *client_id, char *out, size_t n)
{
    struct url_parts u;
    if (strncmp(client_id, "https://", 8) != 0 || !url_split(client_id, &u) || u.host_len == 0)
        return false;
    snprintf(out, n, "%.*s", (int)u.host_len, u.host);
    return true;
}

const char *oauth_cimd_id_check(const char *s)
{
    struct url_parts u;
    if (strlen(s) > OAUTH_MAX_CLIENT_ID || !url_is_http(s) || strncmp(s, "https://", 8) != 0 ||
        !url_split(s, &u) || u.host_len == 0)
        return "a client_id URL must be https, at most 1024 bytes, without userinfo or fragment";
    const char *path = u.rest;
    size_t plen = strcspn(path, "?");
    if (plen < 2 || path[0] != '/')
        return "a client_id URL must have a path";
    for (const char *seg = path; seg < path + plen;) { /* no "." or ".." segment */
        const char *next = seg + 1 + strcspn(seg + 1, "/?");
        size_t sl = (size_t)(next - seg - 1);
        if ((sl == 1 && seg[1] == '.') || (sl == 2 && seg[1] == '.' && seg[2] == '.'))
            return "a client_id URL must not have dot segments";
        seg = next;
    }
    return NULL;
}

/* Why a document cannot be a client before the registration rule reads it, or NULL. */
static const char *cimd_why(json_t *doc, const char *url)
{
    static const char *const forbidden[] = {"client_secret", "client_secret_expires_at"};
    const char *id = json_string_value(json_object_get(doc, "client_id"));
    const char *name = json_string_value(json_object_get(doc, "client_name"));
    if (doc == NULL)
        return "the document is not a JSON object";
    if (id == NULL || strcmp(id, url) != 0)
        return "the document's client_id is not its URL";
    if (name == NULL || name[0] == '\0')
        return "the document has no client_name";
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
        if (json_object_get(doc, forbidden[i]) != NULL)
            return "a metadata document must not hold a client secret";
    json_t *method = json_object_get(doc, "token_endpoint_auth_method");
    enum oauth_auth_method m = oauth_auth_method_parse(json_string_value(method));
    if (method != NULL && m != OAUTH_AUTH_NONE && m != OAUTH_AUTH_PRIVATE_KEY_JWT)
        return "a metadata document's token_endpoint_auth_method must be none or "
               "private_key_jwt";
    return NULL;
}

/* The method of a document without the singular token_endpoint_auth_method: the plural
 * token_endpoint_auth_methods_supported decides (ChatGPT's documents give only that one and
 * then sign their token requests): private_key_jwt when it is listed and the document
 * carries keys, else none when listed; none when the member is absent (no secret can be
 * shared with a document, so not RFC 7591's client_secret_basic). NULL with *why when the
 * list offers neither. */
static const char *cimd_method(json_t *doc, const char **why)
{
    json_t *list = json_object_get(doc, "token_endpoint_auth_methods_supported");
    bool keys = json_object_get(doc, "jwks") != NULL || json_object_get(doc, "jwks_uri") != NULL;
    if (list == NULL)
        return "none";
    if (!json_is_array(list)) {
        *why = "token_endpoint_auth_methods_supported must be an array of strings";
        return NULL;
    }
    if (keys && oauth_json_names(list, "private_key_jwt"))
        return "private_key_jwt";
    if (oauth_json_names(list, "none"))
        return "none";
    *why = "a metadata document must list none, or private_key_jwt with jwks or jwks_uri, in "
           "token_endpoint_auth_methods_supported";
    return NULL;
}

json_t *oauth_cimd_client(const char *body, size_t len, const char *url, char *why, size_t whylen)
{
    json_t *doc = oauth_json_object(body, len);
    const char *bad = cimd_why(doc, url);
    if (bad != NULL) {
        snprintf(why, whylen, "%s", bad);
        json_decref(doc);
        return NULL;
    }
    if (json_object_get(doc, "token_endpoint_auth_method") == NULL) {
        const char *m = cimd_method(doc, &bad);
        if (m == NULL) {
            snprintf(why, whylen, "%s", bad);
            json_decref(doc);
            return NULL;
        }
        json_object_set_new(doc, "token_endpoint_auth_method", json_string(m));
    }
    json_t *meta = NULL;
    const char *code;
    p2a_err e = client_metadata(doc, NULL, &meta, &code, why, whylen);
    json_decref(doc);
    bad = e == P2A_OK ? application_type_why(meta) : NULL;
    if (e == P2A_OK && bad == NULL &&
        !oauth_json_names(json_object_get(meta, "grant_types"), "authorization_code"))
        bad = "a metadata document's grant_types must list authorization_code";
    if (e != P2A_OK || bad != NULL) {
        if (bad != NULL)
            snprintf(why, whylen, "%s", bad);
        json_decref(meta);
        return NULL;
    }
    json_object_set_new(meta, "client_id", json_string(url));
    return meta;
}

/* ---- client assertions -------------------------------------------------------------------- */

static bool aud_names(json_t *aud, const char *const *audiences, size_t naud)
{
    for (size_t i = 0; i < naud; i++)
        if (oauth_json_names(aud, audiences[i]))
            return true;
    return false;
}

/* A NumericDate claim: false when absent; a value that is not an integer is the latest. */
static bool int_claim(json_t *p, const char *name, int64_t *out)
{
    json_t *v = json_object_get(p, name);
    if (v == NULL)
        return false;
    *out = json_is_integer(v) ? (int64_t)json_integer_value(v) : INT64_MAX;
    return true;
}

bool oauth_assertion_issuer(const char *jwt, char *out, size_t outlen)
{
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    json_t *p = d2 != NULL && strlen(jwt) <= JWS_MAX_LEN
                    ? jws_segment_json(d1 + 1, (size_t)(d2 - d1 - 1))
                    : NULL;
    const char *iss = json_string_value(json_object_get(p, "iss"));
    bool ok = iss != NULL && strlen(iss) < outlen;
    if (ok)
        snprintf(out, outlen, "%s", iss);
    json_decref(p);
    return ok;
}

const char *oauth_assertion_check(const char *jwt, const char *client_id, json_t *jwks,
                                  const char *const *audiences, size_t naud, int64_t now,
                                  int skew_s, struct oauth_assertion *out)
{
    const char *why = NULL;
    json_t *p = jws_verify(jwt, jwks, &why);
    if (p == NULL)
        return why;
    const char *iss = json_string_value(json_object_get(p, "iss"));
    const char *sub = json_string_value(json_object_get(p, "sub"));
    const char *jti = json_string_value(json_object_get(p, "jti"));
    int64_t exp = 0, iat = 0, nbf = 0;
    if (iss == NULL || sub == NULL || strcmp(iss, client_id) != 0 || strcmp(sub, client_id) != 0)
        why = "the assertion's iss and sub must be the client_id";
    else if (!aud_names(json_object_get(p, "aud"), audiences, naud))
        why = "the assertion's aud must name this issuer or its token endpoint";
    else if (!int_claim(p, "exp", &exp) || exp <= now - skew_s)
        why = "the assertion has expired (or has no exp)";
    else if (exp > now + OAUTH_MAX_ASSERTION_LIFETIME + skew_s)
        why = "the assertion lives too long (exp at most 5 minutes ahead)";
    else if ((int_claim(p, "iat", &iat) && iat > now + skew_s) ||
             (int_claim(p, "nbf", &nbf) && nbf > now + skew_s))
        why = "the assertion is not valid yet";
    else if (jti == NULL || jti[0] == '\0' || strlen(jti) >= sizeof(out->jti))
        why = "the assertion needs a jti of at most 128 characters";
    if (why == NULL) {
        snprintf(out->jti, sizeof(out->jti), "%s", jti);
        out->exp = exp;
    }
    json_decref(p);
    return why;
}
