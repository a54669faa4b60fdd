/* oauth_grant_jag.c -- /token's jwt-bearer grant with an Identity Assertion JWT Authorization
 * Grant (ID-JAG; Enterprise-Managed Authorization, the MCP extension
 * io.modelcontextprotocol/enterprise-managed-authorization). The rules are core/idjag.c's;
 * this file fetches and stores.
 *
 * The client is authenticated and registered the grant (oauth_token.c) before we are called.
 * Then, each step's refusal an RFC 6749 error whose error_description says why (never a byte
 * of the assertion, which no log line holds either):
 *   1. the assertion at most JWS_MAX_LEN bytes, its (unverified) iss one of
 *      PIPE2_AUTH_ID_JAG_ISSUERS: an unknown issuer is refused here, so nothing is ever
 *      fetched for a name a client chose;
 *   2. one more ID-JAG for this address and for this client (PIPE2_AUTH_ASSERTION_RATE_LIMIT
 *      each, and ..._GLOBAL_RATE_LIMIT in all, per 5 minutes), within the reserve;
 *   3. the issuer's discovery document and key set through the operator's fetcher, cached
 *      (oauth_docs.c); a key the set lacks fetches it again, as for upstream sign-in, at most
 *      every OAUTH_PROVIDER_REFETCH_S;
 *   4. the assertion checked completely (idjag_check), the resource and scope to grant, the
 *      person's user id as upstream sign-in makes it (oidc_user_id: one subject per person);
 *   5. its jti recorded in Redis while any replica may still accept it (its exp and the skew),
 *      SET NX (oauth_store_assertion_once): a replay on any replica finds it;
 *   6. the access token signed, then the person's record read: a disabled person gets
 *      invalid_grant (reading after signing, a disable that lands meanwhile covers the token:
 *      its iat is not after the cutoff); a person seen for the first time gets a record
 *      (source upstream), so that a dashboard can disable them;
 *   7. 200 with the access token alone: no refresh token comes of an ID-JAG (the client asks
 *      the identity provider for a new one).
 * Runs on the facade's loop.
 */
#include "oauth_internal.h"

#include "idjag.h"
#include "jws.h"
#include "oidc.h"

static void refuse(struct oreq *r, const char *why)
{
    oreq_error(r, 400, "invalid_grant", why);
}

bool oauth_grant_jwt_bearer_enabled(const struct p2a_config *cfg)
{
    return idjag_enabled(cfg);
}

static const char *assertion_of(const struct oreq *r)
{
    return oauth_form_get(&r->form, "assertion");
}

/* ---- 6, 7. the token, the person ------------------------------------------------------------ */

static void issued(struct oreq *r)
{
    log_info("oauth.token_issued", "issued an access token to client %s (ID-JAG of %s) jti=%s",
             r->client_id, json_string_value(json_object_get(r->tok.claims, "iss")), r->tok.jti);
    oauth_token_reply(r);
}

static void on_user_put(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)code, (void)value;
    struct oreq *r = oreq_resume(arg, err);
    if (r != NULL)
        issued(r);
}

static void on_user(void *arg, p2a_err err, const struct store_user *u)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    if (u != NULL && u->disabled) {
        refuse(r, "the user's account is disabled");
        return;
    }
    if (u == NULL) {
        oauth_store_user_put(r->o->h.store, r->tok.user_id, r->tok.username, "upstream",
                             clock_now(), false, on_user_put, r);
        return;
    }
    issued(r);
}

/* ---- 5. used once --------------------------------------------------------------------------- */

static void on_jti_recorded(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    if (code != 1) {
        refuse(r, "this ID-JAG was redeemed already; ask the identity provider for a new one");
        return;
    }
    if (!oauth_token_sign(r, TOKEN_KIND_OAUTH, r->tok.user_id,
                          idjag_resource(r->o->cfg, r->tok.claims)))
        return;
    oauth_store_user_get(r->o->h.store, r->tok.user_id, on_user, r);
}

/* The jti is kept under the issuer's name, not a client's: "id-jag:" and the SHA-256 of the
 * issuer (no client id has a colon after "id-jag"). */
static void record_jti(struct oreq *r)
{
    if (!oauth_budget_allows(r->o, OAUTH_ASSERTION_BYTES)) {
        oauth_budget_refuse(r, false);
        return;
    }
    const char *iss = json_string_value(json_object_get(r->tok.claims, "iss"));
    char name[8 + OAUTH_HEX_LEN] = "id-jag:";
    oauth_digest_hex(iss, strlen(iss), name + 7);
    oauth_store_assertion_once(r->o->h.store, name,
                               json_string_value(json_object_get(r->tok.claims, "jti")),
                               (int64_t)json_number_value(json_object_get(r->tok.claims, "exp")),
                               r->o->cfg->clock_skew_s, on_jti_recorded, r);
}

/* ---- 4. the assertion, and what to grant ---------------------------------------------------- */

/* The claims hold; what the request adds (resource, scope) must fit them. */
static void grant(struct oreq *r, json_t *claims)
{
    const struct p2a_config *cfg = r->o->cfg;
    r->tok.claims = claims;
    const char *res = idjag_resource(cfg, claims);
    const char *given = oauth_form_get(&r->form, "resource");
    char canon[OAUTH_MAX_RESOURCES];
    if (given != NULL &&
        (!oauth_resources_canon(cfg, given, canon, sizeof(canon)) || strcmp(canon, res) != 0)) {
        oreq_error(r, 400, "invalid_target", "resource differs from the assertion's resource");
        return;
    }
    if (json_object_get(r->client, "resources") != NULL &&
        oauth_client_resource(r->client, res) == NULL) {
        refuse(r, "the assertion is for a resource this client was not registered for");
        return;
    }
    bool invalid_scope;
    const char *why =
        idjag_scope(cfg, claims, oauth_form_get(&r->form, "scope"), r->tok.granted_scope,
                    sizeof(r->tok.granted_scope), &invalid_scope);
    if (why != NULL) {
        oreq_error(r, 400, invalid_scope ? "invalid_scope" : "invalid_grant", why);
        return;
    }
    if (!oidc_user_id(cfg, claims, r->tok.user_id, sizeof(r->tok.user_id)) ||
        validate_user_id(r->tok.user_id) != NULL) {
        refuse(r, "the assertion's subject does not make a user id here (too long)");
        return;
    }
    oidc_display_name(cfg, claims, r->tok.username, sizeof(r->tok.username));
    record_jti(r);
}

static void on_keys(void *arg, json_t *jwks, const char *why);

static void check(struct oreq *r, json_t *jwks)
{
    const struct p2a_config *cfg = r->o->cfg;
    const char *iwhy;
    struct idjag_expect x = {.issuer = idjag_issuer(cfg, assertion_of(r), &iwhy),
                             .client_id = r->client_id,
                             .now = clock_now(),
                             .skew_s = cfg->clock_skew_s};
    char why[160];
    json_t *claims = NULL;
    enum oidc_result rc = idjag_check(cfg, assertion_of(r), jwks, &x, &claims, why, sizeof(why));
    if (oreq_provider_keys_again(r, &r->tok.issuer, rc == OIDC_UNKNOWN_KEY, on_keys))
        return;
    if (rc != OIDC_OK) {
        refuse(r, why);
        return;
    }
    grant(r, claims);
}

/* ---- 3. the issuer's keys ------------------------------------------------------------------- */

static void unavailable(struct oreq *r, const char *what, const char *why)
{
    char desc[256];
    log_warn("oauth.idjag_issuer_unavailable", "an ID-JAG issuer's %s: %s", what, why);
    snprintf(desc, sizeof(desc), "the identity provider's %s cannot be read right now", what);
    oreq_error(r, 503, "temporarily_unavailable", desc);
}

static void on_keys(void *arg, json_t *jwks, const char *why)
{
    struct oreq *r = arg;
    if (oreq_orphaned(r))
        return;
    if (jwks == NULL) {
        unavailable(r, "keys", why);
        return;
    }
    check(r, jwks);
}

static void on_issuer_document(void *arg, json_t *doc, const char *why)
{
    struct oreq *r = arg;
    if (oreq_orphaned(r))
        return;
    if (doc == NULL) {
        unavailable(r, "discovery document", why);
        return;
    }
    r->tok.issuer.doc = json_incref(doc);
    oauth_docs_get(r->o->docs, DOC_PROVIDER_JWKS,
                   json_string_value(json_object_get(doc, "jwks_uri")), NULL, on_keys, r);
}

/* ---- 2. the limits -------------------------------------------------------------------------- */

static void on_client_rate(void *arg, p2a_err err, int64_t over, int64_t retry_after)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL || !oreq_within_limits(r, over, retry_after, "ID-JAGs", "this client"))
        return;
    const char *why;
    char url[IDJAG_DISCOVERY_MAX];
    if (!idjag_discovery_url(idjag_issuer(r->o->cfg, assertion_of(r), &why), url, sizeof(url))) {
        oreq_error(r, 500, "server_error", "the issuer's discovery URL is too long");
        return;
    }
    oauth_docs_get(r->o->docs, DOC_IDJAG_ISSUER, url, NULL, on_issuer_document, r);
}

static void on_address_rate(void *arg, p2a_err err, int64_t over, int64_t retry_after)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL || !oreq_within_limits(r, over, retry_after, "ID-JAGs", "this address"))
        return;
    const struct p2a_config *cfg = r->o->cfg;
    oauth_store_limit_hit(r->o->h.store, "idjag_client", r->client_id, cfg->assertion_rate_limit,
                          cfg->assertion_global_rate_limit, OAUTH_ASSERTION_WINDOW_S,
                          on_client_rate, r);
}

/* ---- 1. the request ------------------------------------------------------------------------- */

void oauth_grant_jwt_bearer(struct oreq *r)
{
    const struct p2a_config *cfg = r->o->cfg;
    const char *assertion = assertion_of(r), *why;
    if (assertion == NULL) {
        oreq_error(r, 400, "invalid_request", "assertion (the ID-JAG) is required");
        return;
    }
    if (strlen(assertion) > JWS_MAX_LEN) {
        refuse(r, "the assertion is longer than 8192 bytes");
        return;
    }
    if (idjag_issuer(cfg, assertion, &why) == NULL) {
        refuse(r, why);
        return;
    }
    if (!oauth_budget_allows(r->o, 2 * OAUTH_COUNTERS_BYTES)) {
        oauth_budget_refuse(r, false);
        return;
    }
    oauth_store_limit_hit(r->o->h.store, "idjag", r->limit, cfg->assertion_rate_limit,
                          cfg->assertion_global_rate_limit, OAUTH_ASSERTION_WINDOW_S,
                          on_address_rate, r);
}
