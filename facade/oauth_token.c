/* oauth_token.c -- /token (see oauth_internal.h): the grant type looked up in the table of
 * grants, the client authenticated (oauth_client.c), then the grant's step: here the code grant
 * with PKCE S256 (RFC 8707 resources, a refresh token family made) and refresh with rotation (a
 * replayed refresh token revokes its family). The other grants live in files of their own
 * (oauth_grant_*.c) and share this file's signing and answering (oauth_token_sign,
 * oauth_token_reply). Every refresh token and code reaches Redis only as a digest. */
#include "oauth_internal.h"

/* ---- /token -------------------------------------------------------------------------------- */

void oauth_revoke_locally(struct oreq *r, const struct revocation *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        revoke_local(r->o->h.revoked, v[i].jti, v[i].exp);
}

void oauth_token_reply(struct oreq *r)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:s}", "access_token", r->tok.access_token, "token_type",
                          "Bearer", "expires_in", (json_int_t)r->o->cfg->access_token_lifetime_s,
                          "scope", r->tok.granted_scope);
    /* refresh tokens follow the client's registered grant_types (the family is kept either
     * way: it revokes the access tokens of a reused code); grants without a family (client
     * credentials) make none */
    if (r->tok.new_rt[0] != '\0' && oauth_client_has_grant(r->client, OAUTH_GRANT_REFRESH))
        json_object_set_new(j, "refresh_token", json_string(r->tok.new_rt));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s == NULL) {
        oreq_error(r, 500, "server_error", "could not encode the tokens");
        return;
    }
    /* only a client that got tokens is "used": an anonymous /authorize or a refused /token
     * request keeps no registration alive past its unused expiry */
    if (oauth_client_id_valid(r->client_id))
        oauth_store_client_touch(r->o->h.store, r->client_id, r->o->cfg->client_idle_expiry_s,
                                 store_status_ignore, NULL);
    oreq_json(r, 200, s);
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

bool oauth_token_sign(struct oreq *r, enum token_kind kind, const char *user_id,
                      const char *resources)
{
    const struct p2a_config *cfg = r->o->cfg;
    int64_t now = clock_now();
    r->tok.at_exp = now + cfg->access_token_lifetime_s;
    char list[OAUTH_MAX_RESOURCES];
    const char *aud[TOKEN_MAX_AUD];
    size_t naud = 0;
    snprintf(list, sizeof(list), "%s", resources);
    for (char *save = NULL, *t = strtok_r(list, " ", &save); t != NULL && naud < TOKEN_MAX_AUD;
         t = strtok_r(NULL, " ", &save))
        aud[naud++] = t;
    struct token_issue in = {.kind = kind,
                             .issuer = cfg->issuer,
                             .sub = user_id,
                             .aud = aud,
                             .naud = naud,
                             .scope = r->tok.granted_scope,
                             .client_id = r->client_id,
                             .iat = now,
                             .exp = r->tok.at_exp};
    if (token_sign(r->o->h.keys(r->o->h.arg), &in, &r->tok.access_token, r->tok.jti) != P2A_OK) {
        oreq_error(r, 500, "server_error", "could not sign the token");
        return false;
    }
    return true;
}

/* The store has recorded the new tokens ({1}), or found their grant revoked meanwhile. */
static void on_tokens_recorded(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    bool refresh = strcmp(oauth_form_get(&r->form, "grant_type"), "refresh_token") == 0;
    if (code != 1) {
        oreq_error(r, 400, "invalid_grant",
                   code == -1 ? "the user's account is disabled"
                   : refresh  ? "refresh token was revoked"
                              : "authorization code was already used");
        return;
    }
    log_info(refresh ? "oauth.token_refreshed" : "oauth.token_issued",
             "issued tokens to client %s (%s) jti=%s", r->client_id, refresh ? "refresh" : "code",
             r->tok.jti);
    oauth_token_reply(r);
}

static void on_code_reuse_revoked(void *arg, p2a_err err, const struct revocation *v, size_t n)
{
    struct oreq *r = arg;
    if (oreq_orphaned(r))
        return;
    if (err == P2A_OK)
        oauth_revoke_locally(r, v, n);
    oreq_error(r, 400, "invalid_grant",
               "authorization code was already used; the tokens issued for it are revoked");
}

static void on_code_redeemed(void *arg, p2a_err err, const struct store_code *c)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    if (c->use == STORE_CODE_UNKNOWN) {
        oreq_error(r, 400, "invalid_grant", "authorization code is invalid or expired");
        return;
    }
    if (c->use == STORE_CODE_REUSED) {
        log_warn("oauth.code_reuse",
                 "authorization code presented again by client %s; "
                 "revoking its tokens",
                 r->client_id);
        oauth_store_family_revoke(r->o->h.store, c->fid, clock_now_ms(), on_code_reuse_revoked, r);
        return;
    }
    json_t *b = json_loadb(c->binding, c->binding_len, 0, NULL);
    const char *cid = json_string_value(json_object_get(b, "client_id"));
    const char *ruri = json_string_value(json_object_get(b, "redirect_uri"));
    bool rgiven = json_is_true(json_object_get(b, "redirect_given"));
    const char *chal = json_string_value(json_object_get(b, "challenge"));
    const char *res = json_string_value(json_object_get(b, "resource"));
    const char *scope = json_string_value(json_object_get(b, "scope"));
    const char *user = json_string_value(json_object_get(b, "user_id"));
    const char *given_uri = oauth_form_get(&r->form, "redirect_uri");
    const char *verifier = oauth_form_get(&r->form, "code_verifier");
    char asked[OAUTH_MAX_RESOURCES];
    const char *given_res = oauth_form_get(&r->form, "resource");
    const char *why = NULL, *error = "invalid_grant";
    if (cid == NULL || ruri == NULL || chal == NULL || res == NULL || scope == NULL || user == NULL)
        why = "authorization code is invalid or expired";
    else if (strcmp(cid, r->client_id) != 0)
        why = "authorization code was issued to another client";
    else if ((rgiven && given_uri == NULL) ||
             (given_uri != NULL && !oauth_redirect_uri_same(ruri, given_uri)))
        why = "redirect_uri does not match the authorization request";
    else if (!oauth_pkce_s256_ok(verifier, chal))
        why = "code_verifier does not match the code_challenge";
    else if (given_res != NULL &&
             !oauth_resources_canon(r->o->cfg, given_res, asked, sizeof(asked)))
        why = "resource is not a server this issuer serves", error = "invalid_target";
    else if (given_res != NULL && !oauth_resources_within(res, asked))
        why = "resource differs from the authorization request", error = "invalid_target";
    if (why != NULL) {
        json_decref(b);
        oreq_error(r, 400, error, why);
        return;
    }
    snprintf(r->tok.granted_scope, sizeof(r->tok.granted_scope), "%s", scope);
    /* RFC 8707: a token request may narrow the audience to some of the granted resources */
    if (!oauth_token_sign(r, TOKEN_KIND_OAUTH, user, given_res != NULL ? asked : res)) {
        json_decref(b);
        return;
    }
    if (oauth_random_secret(r->tok.new_rt) != P2A_OK) {
        json_decref(b);
        oreq_error(r, 500, "server_error", "no randomness");
        return;
    }
    char rt_digest[OAUTH_HEX_LEN + 1];
    oauth_digest_hex(r->tok.new_rt, strlen(r->tok.new_rt), rt_digest);
    oauth_store_family_create(r->o->h.store, r->tok.fid, r->client_id, user, scope, res, rt_digest,
                              r->tok.jti, r->tok.at_exp, r->o->cfg->refresh_token_lifetime_s,
                              clock_now_ms(), on_tokens_recorded, r);
    json_decref(b);
}

static void grant_code(struct oreq *r)
{
    const char *code = oauth_form_get(&r->form, "code");
    const char *verifier = oauth_form_get(&r->form, "code_verifier");
    if (code == NULL || verifier == NULL) {
        oreq_error(r, 400, "invalid_request", "code and code_verifier are required");
        return;
    }
    if (!oauth_pkce_verifier_valid(verifier)) {
        oreq_error(r, 400, "invalid_request",
                   "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]");
        return;
    }
    char digest[OAUTH_HEX_LEN + 1];
    oauth_digest_hex(code, strlen(code), digest);
    if (oauth_random_secret(r->tok.fid) != P2A_OK) {
        oreq_error(r, 500, "server_error", "no randomness");
        return;
    }
    r->tok.fid[22] = '\0'; /* 128 bits name a family */
    oauth_store_code_redeem(r->o->h.store, digest, r->tok.fid, on_code_redeemed, r);
}

static void on_refreshed(void *arg, p2a_err err, const struct store_refresh *f)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    if (f->code == 0) {
        snprintf(r->tok.fid, sizeof(r->tok.fid), "%s", f->fid);
        snprintf(r->tok.granted_scope, sizeof(r->tok.granted_scope), "%s", f->scope);
        if (!oauth_token_sign(r, TOKEN_KIND_OAUTH, f->user_id, f->resource))
            return;
        oauth_store_family_add_at(r->o->h.store, r->tok.fid, f->user_id, r->tok.jti, r->tok.at_exp,
                                  clock_now_ms(), on_tokens_recorded, r);
        return;
    }
    switch (f->code) {
    case -2:
        oreq_error(r, 400, "invalid_grant", "refresh token was revoked");
        break;
    case -3:
        oauth_revoke_locally(r, f->revoked, f->nrevoked);
        log_warn("oauth.refresh_reuse",
                 "an old refresh token of client %s was replayed; "
                 "revoked the grant",
                 r->client_id);
        oreq_audit(r, (struct audit_in){.type = "refresh.reuse_detected",
                                        .user_id = r->tok.user_id,
                                        .client_id = r->client_id,
                                        .outcome = "failure",
                                        .detail = "the token family was revoked"});
        oreq_error(r, 400, "invalid_grant",
                   "refresh token was already used; every token of this grant is revoked");
        break;
    case -4:
        oreq_error(r, 400, "invalid_grant", "refresh token was issued to another client");
        break;
    case -5:
        oreq_error(r, 400, "invalid_scope", "scope may only narrow the granted scope");
        break;
    case -6:
        oreq_error(r, 400, "invalid_target", "resource differs from the granted one");
        break;
    default:
        oreq_error(r, 400, "invalid_grant", "refresh token is invalid or expired");
        break;
    }
}

static void grant_refresh(struct oreq *r)
{
    const char *rt = oauth_form_get(&r->form, "refresh_token");
    const char *scope = oauth_form_get(&r->form, "scope");
    const char *res = oauth_form_get(&r->form, "resource");
    if (rt == NULL) {
        oreq_error(r, 400, "invalid_request", "refresh_token is required");
        return;
    }
    if (scope != NULL && scope_check(scope) != NULL) {
        oreq_error(r, 400, "invalid_scope", "scope is malformed");
        return;
    }
    char canon[OAUTH_MAX_RESOURCES] = ""; /* "": the grant's own */
    if (res != NULL && !oauth_resources_canon(r->o->cfg, res, canon, sizeof(canon))) {
        oreq_error(r, 400, "invalid_target", "resource is not a server this issuer serves");
        return;
    }
    char digest[OAUTH_HEX_LEN + 1], new_digest[OAUTH_HEX_LEN + 1];
    if (oauth_random_secret(r->tok.new_rt) != P2A_OK) {
        oreq_error(r, 500, "server_error", "no randomness");
        return;
    }
    oauth_digest_hex(rt, strlen(rt), digest);
    oauth_digest_hex(r->tok.new_rt, strlen(r->tok.new_rt), new_digest);
    const struct p2a_config *cfg = r->o->cfg;
    oauth_store_refresh(r->o->h.store, digest, r->client_id, new_digest, scope ? scope : "", canon,
                        clock_now_ms(), cfg->refresh_grace_s, cfg->refresh_token_lifetime_s,
                        on_refreshed, r);
}

/* ---- the grants ----------------------------------------------------------------------------- */

/* Every grant /token serves, by its standard name: the step once the client is
 * authenticated (and has registered the grant), and whether a setting turns it on (NULL:
 * always on). The metadata lists the same ones (oauth_token_grants_json). */
struct token_grant {
    const char *name;
    void (*run)(struct oreq *r);
    bool (*enabled)(const struct p2a_config *cfg);
};
static const struct token_grant grants[] = {
    {OAUTH_GRANT_CODE, grant_code, NULL},
    {OAUTH_GRANT_REFRESH, grant_refresh, NULL},
    {OAUTH_GRANT_CLIENT_CREDENTIALS, oauth_grant_client_credentials, NULL},
    {OAUTH_GRANT_JWT_BEARER, oauth_grant_jwt_bearer, oauth_grant_jwt_bearer_enabled},
    {OAUTH_GRANT_TOKEN_EXCHANGE, oauth_grant_token_exchange, oauth_grant_token_exchange_enabled},
};
#define NGRANTS (sizeof(grants) / sizeof(grants[0]))

static const struct token_grant *grant_find(const struct p2a_config *cfg, const char *name)
{
    for (size_t i = 0; i < NGRANTS; i++)
        if (strcmp(grants[i].name, name) == 0)
            return grants[i].enabled == NULL || grants[i].enabled(cfg) ? &grants[i] : NULL;
    return NULL;
}

void oauth_token_grants_json(const struct p2a_config *cfg, json_t *list)
{
    for (size_t i = 0; i < NGRANTS; i++)
        if (grants[i].enabled == NULL || grants[i].enabled(cfg))
            json_array_append_new(list, json_string(grants[i].name));
}

/* The client is authenticated (oauth_client_auth): may it use this grant? */
static void token_after_client(struct oreq *r)
{
    const char *gt = oauth_form_get(&r->form, "grant_type");
    const struct token_grant *g = grant_find(r->o->cfg, gt);
    enum oauth_auth_method m = oauth_auth_method_parse(
        json_string_value(json_object_get(r->client, "token_endpoint_auth_method")));
    if (!oauth_client_has_grant(r->client, gt)) {
        oreq_error(r, 400, "unauthorized_client", "this client did not register this grant_type");
        return;
    }
    if (oauth_grant_confidential(gt) && m == OAUTH_AUTH_NONE) {
        oreq_error(r, 400, "unauthorized_client", "this grant_type is for confidential clients");
        return;
    }
    g->run(r);
}

void oauth_do_token(struct oreq *r)
{
    if (!oreq_read_form(r))
        return;
    const char *gt = oauth_form_get(&r->form, "grant_type");
    if (gt == NULL) {
        oreq_error(r, 400, "invalid_request", "grant_type is required");
        return;
    }
    if (grant_find(r->o->cfg, gt) == NULL) {
        oreq_error(r, 400, "unsupported_grant_type",
                   "grant_type is not one this server serves (its metadata lists them: "
                   "grant_types_supported)");
        return;
    }
    r->tok.after_client = token_after_client;
    oauth_client_auth(r);
}
