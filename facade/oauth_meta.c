/* oauth_meta.c -- the documents the facade answers at once, without a request record: RFC 8414
 * authorization server metadata (made once, at start), RFC 9728 protected resource metadata,
 * the JWKS, and 404 for any other /.well-known/ name (see oauth_internal.h). */
#include "oauth_internal.h"

#include "idjag.h"

/* ---- metadata ------------------------------------------------------------------------------ */

/* A scope list as a JSON array (scopes_supported). */
static json_t *scopes_json(const char *list)
{
    json_t *scopes = json_array();
    const char *tok;
    size_t n;
    for (const char *p = list; scope_next(&p, &tok, &n);)
        json_array_append_new(scopes, json_stringn(tok, n));
    return scopes;
}

char *oauth_meta_as(const struct p2a_config *cfg)
{
    const char *iss = cfg->issuer;
    json_t *scopes = scopes_json(cfg->scopes); /* what the AS offers, offline_access too */
    char ep[6][2200];
    static const char *const names[6] = {"/authorize", "/token",      "/register",
                                         "/revoke",    "/introspect", "/jwks.json"};
    for (int i = 0; i < 6; i++)
        snprintf(ep[i], sizeof(ep[i]), "%s%s", iss, names[i]);
    json_t *grant_types = json_array();
    oauth_token_grants_json(cfg, grant_types);
    json_t *m = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:[s], s:[s], s:o, s:[s],"
        " s:[ssss], s:[ssss], s:[sss], s:b, s:b}",
        "issuer", iss, "authorization_endpoint", ep[0], "token_endpoint", ep[1],
        "registration_endpoint", ep[2], "revocation_endpoint", ep[3], "introspection_endpoint",
        ep[4], "jwks_uri", ep[5], "scopes_supported", scopes, "response_types_supported", "code",
        "response_modes_supported", "query", "grant_types_supported", grant_types,
        "code_challenge_methods_supported", "S256", "token_endpoint_auth_methods_supported", "none",
        "client_secret_post", "client_secret_basic", "private_key_jwt",
        "revocation_endpoint_auth_methods_supported", "none", "client_secret_post",
        "client_secret_basic", "private_key_jwt", "introspection_endpoint_auth_methods_supported",
        "client_secret_basic", "client_secret_post", "private_key_jwt",
        "authorization_response_iss_parameter_supported", 1,
        "client_id_metadata_document_supported", 1);
    /* RFC 8414 2: the algorithms a private_key_jwt assertion may use, per endpoint */
    static const char *const alg_members[] = {
        "token_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint_auth_signing_alg_values_supported"};
    for (size_t i = 0; m != NULL && i < sizeof(alg_members) / sizeof(alg_members[0]); i++)
        json_object_set_new(m, alg_members[i], json_pack("[ss]", "ES256", "RS256"));
    /* Enterprise-Managed Authorization: the jwt-bearer grant redeems ID-JAGs (idjag.h) */
    if (m != NULL && idjag_enabled(cfg))
        json_object_set_new(m, "authorization_grant_profiles_supported",
                            json_pack("[s]", IDJAG_PROFILE));
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return s;
}

void oauth_serve_as_meta(struct oauth_http *o, struct evhttp_request *http,
                         const struct oauth_endpoint *ep, const char *rest)
{
    (void)rest;
    oh_send_raw(o, http, ep, 200, "application/json", o->as_meta, strlen(o->as_meta));
}

void oauth_serve_jwks(struct oauth_http *o, struct evhttp_request *http,
                      const struct oauth_endpoint *ep, const char *rest)
{
    (void)rest;
    char *j = keys_jwks(o->h.keys(o->h.arg));
    oh_add_header(http, "Cache-Control", "public, max-age=60");
    oh_send_raw(o, http, ep, 200, "application/json", j, strlen(j));
    free(j);
}

void oauth_serve_other(struct oauth_http *o, struct evhttp_request *http,
                       const struct oauth_endpoint *ep, const char *rest)
{
    (void)rest;
    const char *e = "{\"error\":\"not_found\",\"error_description\":\"this server "
                    "publishes only RFC 8414 and RFC 9728 metadata\"}";
    oh_send_raw(o, http, ep, 404, "application/json", e, strlen(e));
}

void oauth_serve_prm(struct oauth_http *o, struct evhttp_request *http,
                     const struct oauth_endpoint *ep, const char *suffix)
{
    const struct p2a_config *cfg = o->cfg;
    const char *found = NULL;
    for (size_t i = 0; i < cfg->nresources && found == NULL; i++) {
        const char *p = url_path(cfg->resources[i]);
        size_t n = strlen(p);
        while (n > 0 && p[n - 1] == '/')
            n--;
        size_t sn = strlen(suffix);
        while (sn > 0 && suffix[sn - 1] == '/')
            sn--;
        if (n == sn && strncmp(p, suffix, n) == 0)
            found = cfg->resources[i];
    }
    if (found == NULL && suffix[0] == '\0')
        found = cfg->resources[0]; /* the root form names the first resource */
    if (found == NULL) {
        const char *e = "{\"error\":\"not_found\",\"error_description\":\"no protected "
                        "resource at this path\"}";
        oh_send_raw(o, http, ep, 404, "application/json", e, strlen(e));
        return;
    }
    json_t *scopes = scopes_json(cfg->resource_scopes); /* never offline_access (SEP-2207) */
    json_t *m = json_pack("{s:s, s:[s], s:o, s:[s], s:s}", "resource", found,
                          "authorization_servers", cfg->issuer, "scopes_supported", scopes,
                          "bearer_methods_supported", "header", "resource_name", "Pipe2.ai MCP");
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    oh_send_raw(o, http, ep, 200, "application/json", s, strlen(s));
    free(s);
}
