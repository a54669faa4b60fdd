/* oauth_revoke.c -- RFC 7009 /revoke and RFC 7662 /introspect (see oauth_internal.h). */
#include "oauth_internal.h"

/* ---- /revoke ------------------------------------------------------------------------------- */

static void on_revoked(void *arg, p2a_err err, const struct revocation *v, size_t n)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    oauth_revoke_locally(r, v, n);
    log_info("oauth.revoked", "client %s revoked a token", r->client_id);
    oreq_finish(r, 200, "application/json", "{}", 2);
}

static void on_at_revoked(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)code, (void)value;
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    revoke_local(r->o->h.revoked, r->tok.jti, r->tok.at_exp);
    log_info("oauth.revoked", "client %s revoked access token jti=%s", r->client_id, r->tok.jti);
    oreq_finish(r, 200, "application/json", "{}", 2);
}

static void revoke_after_client(struct oreq *r)
{
    const char *tok = oauth_form_get(&r->form, "token");
    if (strchr(tok, '.') != NULL) {
        struct token_claims c = {0};
        enum token_verdict v =
            token_decode(r->o->h.keys(r->o->h.arg), r->o->cfg->issuer, tok, strlen(tok), &c);
        /* only a client's own access tokens; anything else is "already invalid" (RFC 7009) */
        if (v != TV_ACTIVE || c.kind == TOKEN_KIND_PAT || strcmp(c.client_id, r->client_id) != 0) {
            token_claims_deinit(&c);
            oreq_finish(r, 200, "application/json", "{}", 2);
            return;
        }
        snprintf(r->tok.jti, sizeof(r->tok.jti), "%s", c.jti);
        r->tok.at_exp = c.exp;
        token_claims_deinit(&c);
        oauth_store_jti_revoke(r->o->h.store, r->tok.jti, r->tok.at_exp, clock_now_ms(),
                               on_at_revoked, r);
        return;
    }
    char digest[OAUTH_HEX_LEN + 1];
    oauth_digest_hex(tok, strlen(tok), digest);
    oauth_store_refresh_revoke(r->o->h.store, digest, r->client_id, clock_now_ms(), on_revoked, r);
}

void oauth_do_revoke(struct oreq *r)
{
    if (!oreq_read_form(r))
        return;
    if (oauth_form_get(&r->form, "token") == NULL) {
        oreq_error(r, 400, "invalid_request", "token is required");
        return;
    }
    r->tok.after_client = revoke_after_client;
    oauth_client_auth(r);
}

/* ---- /introspect ---------------------------------------------------------------------------- */

/* The resources of a grant (space-separated) as a JSON array, and whether a service key
 * bound to resources may hear about it (one of them is the key's). */
static json_t *grant_audiences(const struct svc_key *k, const char *resources, bool *allowed)
{
    json_t *aud = json_array();
    const char *t;
    size_t n;
    *allowed = k == NULL || k->nresources == 0;
    for (const char *p = resources; scope_next(&p, &t, &n);) {
        char one[OAUTH_MAX_URI + 1];
        snprintf(one, sizeof(one), "%.*s", (int)n, t);
        *allowed = *allowed || token_resource_in(k->resources, k->nresources, one);
        json_array_append_new(aud, json_string(one));
    }
    return aud;
}

/* A refresh token (RFC 7662 2.1: introspectable by the client it was issued to): active
 * while it is its family's current token and the family stands. */
static void on_refresh_info(void *arg, p2a_err err, const struct store_refresh_info *info)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    bool allowed = false;
    json_t *aud = info != NULL ? grant_audiences(r->tok.caller, info->resource, &allowed) : NULL;
    if (info == NULL || (r->client != NULL && strcmp(info->client_id, r->client_id) != 0) ||
        !allowed) {
        json_decref(aud);
        oreq_json(r, 200, INTROSPECT_INACTIVE_JSON);
        return;
    }
    long long ttl = info->ttl_s;
    json_t *j = json_pack("{s:b, s:s, s:s, s:s, s:s, s:I, s:o, s:s}", "active", 1, "client_id",
                          info->client_id, "sub", info->user_id, "scope", info->scope, "iss",
                          r->o->cfg->issuer, "exp", (json_int_t)(clock_now() + (ttl > 0 ? ttl : 0)),
                          "aud", aud, "token_use", "refresh");
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    oreq_json(r, 200, s ? s : INTROSPECT_INACTIVE_JSON);
    free(s);
}

static void introspect_after_auth(struct oreq *r)
{
    const struct p2a_config *cfg = r->o->cfg;
    const char *tok = oauth_form_get(&r->form, "token");
    if (tok != NULL && tok[0] != '\0' && strchr(tok, '.') == NULL) { /* not a JWT */
        char digest[OAUTH_HEX_LEN + 1];
        oauth_digest_hex(tok, strlen(tok), digest);
        oauth_store_refresh_info(r->o->h.store, digest, on_refresh_info, r);
        return;
    }
    const char *res = oauth_form_get(&r->form, "resource");
    struct introspector x = {
        .cfg = cfg, .keys = r->o->h.keys(r->o->h.arg), .revoked = r->o->h.revoked};
    struct introspect_query q = {.token = tok ? tok : "",
                                 .len = tok ? strlen(tok) : 0,
                                 .resource = res,
                                 .bound = r->tok.caller ? r->tok.caller->resources : NULL,
                                 .nbound = r->tok.caller ? r->tok.caller->nresources : 0};
    char body[INTROSPECT_JSON_MAX];
    /* RFC 7662 4: a client learns only about tokens issued to it */
    if (introspect_rfc7662(&x, &q, r->client != NULL ? r->client_id : NULL, clock_now(), body,
                           sizeof(body)) != P2A_OK) {
        oreq_error(r, 503, "temporarily_unavailable",
                   "revocation list is not in sync with Redis; refusing to answer");
        return;
    }
    oreq_json(r, 200, body);
}

/* After client_auth: a public client has no credentials to introspect with. */
static void introspect_confidential(struct oreq *r)
{
    const char *method =
        json_string_value(json_object_get(r->client, "token_endpoint_auth_method"));
    if (oauth_auth_method_parse(method) == OAUTH_AUTH_NONE) {
        oreq_error(r, 401, "invalid_client", "a public client may not introspect tokens");
        return;
    }
    introspect_after_auth(r);
}

void oauth_do_introspect(struct oreq *r)
{
    if (!oreq_read_form(r))
        return;
    size_t klen;
    const char *key = oauth_bearer(oh_req_header(r->http, "Authorization"), &klen);
    if (key != NULL) {
        if (svckeys_check(r->o->h.svckeys, key, klen, &r->tok.caller) == SVC_ROLE_NONE) {
            oreq_error(r, 401, "invalid_client", "unknown service key");
            return;
        }
        introspect_after_auth(r);
        return;
    }
    /* otherwise only a confidential client, with its secret (Basic or in the form) */
    const char *authz = oh_req_header(r->http, "Authorization");
    bool basic = authz != NULL && strncasecmp(authz, "Basic ", 6) == 0;
    bool in_form = oauth_form_get(&r->form, "client_secret") != NULL ||
                   oauth_form_get(&r->form, "client_assertion") != NULL;
    if (authz != NULL ? !basic : !in_form) {
        if (authz == NULL) /* RFC 6750 3.1: no credentials, so no error code */
            oh_add_header(r->http, "WWW-Authenticate", "Bearer realm=\"pipe2-auth\"");
        oreq_error(r, 401, "invalid_client",
                   "authenticate with a service key (Bearer) or a confidential client's "
                   "credentials");
        return;
    }
    r->tok.after_client = introspect_confidential;
    oauth_client_auth(r);
}
