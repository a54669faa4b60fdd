/* oauth_client.c -- the client a request names (see oauth_internal.h): looked up (a record in
 * Redis, or a Client ID Metadata Document through oauth_docs.c) for /authorize and the token
 * endpoints; authenticated for /token, /revoke and /introspect (a secret, Basic or in the form,
 * or an RFC 7523 assertion, its jti used once and rate limited); and RFC 7591 /register (rate
 * limited, within the reserve of Redis memory). */
#include "oauth_internal.h"
#include "store_clients.h"

/* ---- the client: registered, or a metadata document --------------------------------------- */

static void on_client_document(void *arg, json_t *value, const char *why)
{
    struct oreq *r = arg;
    if (oreq_orphaned(r))
        return;
    r->client = json_incref(value);
    snprintf(r->client_why, sizeof(r->client_why), "%s", why ? why : "");
    r->after_lookup(r);
}

static void on_client_record(void *arg, p2a_err err, const struct store_client *c)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    r->client = NULL;
    if (c != NULL && c->revoked)
        snprintf(r->client_why, sizeof(r->client_why), "this client was revoked");
    else if (c != NULL)
        r->client = json_loadb(c->record, c->len, 0, NULL);
    r->after_lookup(r);
}

void oreq_client_lookup(struct oreq *r, void (*next)(struct oreq *r))
{
    r->after_lookup = next;
    r->client_why[0] = '\0';
    if (strncmp(r->client_id, "https://", 8) == 0)
        oauth_docs_get(r->o->docs, DOC_CLIENT, r->client_id, r->limit, on_client_document, r);
    else
        oauth_store_client_get(r->o->h.store, r->client_id, on_client_record, r);
}

/* ---- limits --------------------------------------------------------------------------------- */

bool oreq_within_limits(struct oreq *r, int64_t over, int64_t retry_after, const char *what,
                        const char *whose)
{
    if (over == 0)
        return true;
    char desc[160], retry[24];
    snprintf(desc, sizeof(desc), "too many %s%s%s; try again later", what,
             over == 1 ? " from " : "", over == 1 ? whose : "");
    snprintf(retry, sizeof(retry), "%lld", (long long)retry_after);
    oh_add_header(r->http, "Retry-After", retry);
    if (strcmp(what, "registrations") == 0) /* aggregated per address and minute */
        oreq_audit(r, (struct audit_in){.type = "client.refused",
                                        .outcome = "failure",
                                        .detail = "registration rate limit"});
    oreq_error(r, 429, "too_many_requests", desc);
    return false;
}

/* ---- client authentication (token, revoke, introspect) ------------------------------------- */

static void client_authenticated(struct oreq *r);

/* A client assertion (RFC 7523) instead of a secret: its type, and the client it names when
 * the form does not (its iss, read again once verified). false after answering. */
static bool read_assertion(struct oreq *r, const char *body_id, const char *authz)
{
    const char *type = oauth_form_get(&r->form, "client_assertion_type");
    r->tok.assertion = oauth_form_get(&r->form, "client_assertion");
    if (r->tok.assertion == NULL && type == NULL)
        return true;
    if (r->tok.assertion == NULL || type == NULL || strcmp(type, OAUTH_ASSERTION_TYPE) != 0) {
        oreq_error(r, 400, "invalid_request",
                   "client_assertion_type must be " OAUTH_ASSERTION_TYPE
                   " with a client_assertion");
        return false;
    }
    if (authz != NULL || oauth_form_get(&r->form, "client_secret") != NULL) {
        oreq_error(r, 400, "invalid_request", "use one client authentication method");
        return false;
    }
    if (body_id == NULL &&
        !oauth_assertion_issuer(r->tok.assertion, r->client_id, sizeof(r->client_id))) {
        oreq_error(r, 401, "invalid_client", "the client assertion names no client");
        return false;
    }
    if (body_id != NULL)
        snprintf(r->client_id, sizeof(r->client_id), "%s", body_id);
    return true;
}

/* Reads the client's credentials (Basic; client_id and client_secret in the body; or a
 * client assertion), looks the client up and calls r->tok.after_client once it is
 * authenticated. */
void oauth_client_auth(struct oreq *r)
{
    const char *authz = oh_req_header(r->http, "Authorization");
    const char *body_id = oauth_form_get(&r->form, "client_id");
    const char *body_secret = oauth_form_get(&r->form, "client_secret");
    if (!read_assertion(r, body_id, authz))
        return;
    if (r->tok.assertion != NULL) {
        /* the client is named; its keys are looked at once it is found */
    } else if (authz != NULL && strncasecmp(authz, "Basic ", 6) == 0) {
        if (body_secret != NULL) {
            oreq_error(r, 400, "invalid_request", "use one client authentication method");
            return;
        }
        if (!oauth_basic_parse(authz, r->client_id, sizeof(r->client_id), r->tok.secret,
                               sizeof(r->tok.secret))) {
            oreq_error(r, 401, "invalid_client", "malformed Basic credentials");
            return;
        }
        if (body_id != NULL && strcmp(body_id, r->client_id) != 0) {
            oreq_error(r, 400, "invalid_request", "client_id differs from the credentials");
            return;
        }
        r->tok.has_secret = true;
    } else {
        if (body_id == NULL) {
            oreq_error(r, 401, "invalid_client", "client authentication is required");
            return;
        }
        snprintf(r->client_id, sizeof(r->client_id), "%s", body_id);
        if (body_secret != NULL) {
            snprintf(r->tok.secret, sizeof(r->tok.secret), "%s", body_secret);
            r->tok.has_secret = true;
        }
    }
    if (!oauth_client_id_usable(r->client_id)) {
        oreq_error(r, 401, "invalid_client", "unknown client; register again");
        return;
    }
    oreq_client_lookup(r, client_authenticated);
}

static void on_assertion_recorded(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    if (code != 1) {
        oreq_error(r, 401, "invalid_client", "this client assertion was used already");
        return;
    }
    r->tok.after_client(r);
}

static void on_assertion_rate(void *arg, p2a_err err, int64_t over, int64_t retry_after)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL || !oreq_within_limits(r, over, retry_after, "client assertions", "this address"))
        return;
    if (!oauth_budget_allows(r->o, OAUTH_ASSERTION_BYTES)) {
        oauth_budget_refuse(r, false);
        return;
    }
    oauth_store_assertion_once(r->o->h.store, r->client_id, r->tok.signed_by.jti,
                               r->tok.signed_by.exp, r->o->cfg->clock_skew_s, on_assertion_recorded,
                               r);
}

/* Verifies r->tok.assertion with the client's keys, then records its jti (used once). */
static void check_assertion(struct oreq *r, json_t *jwks)
{
    const struct p2a_config *cfg = r->o->cfg;
    char token_ep[OAUTH_MAX_URI + 16], this_ep[OAUTH_MAX_URI + 16];
    snprintf(token_ep, sizeof(token_ep), "%s/token", cfg->issuer);
    snprintf(this_ep, sizeof(this_ep), "%s%s", cfg->issuer, r->ep->path);
    const char *audiences[] = {cfg->issuer, token_ep, this_ep};
    const char *why = oauth_assertion_check(r->tok.assertion, r->client_id, jwks, audiences, 3,
                                            clock_now(), cfg->clock_skew_s, &r->tok.signed_by);
    if (why != NULL) {
        oreq_error(r, 401, "invalid_client", why);
        return;
    }
    /* anyone may publish a document and sign for it: the jti records an address (and all
     * together) may leave in Redis are bounded, and stop short of the reserve */
    if (!oauth_budget_allows(r->o, OAUTH_COUNTERS_BYTES)) {
        oauth_budget_refuse(r, false);
        return;
    }
    oauth_store_limit_hit(r->o->h.store, "assertion", r->limit, cfg->assertion_rate_limit,
                          cfg->assertion_global_rate_limit, OAUTH_ASSERTION_WINDOW_S,
                          on_assertion_rate, r);
}

static void on_client_keys(void *arg, json_t *jwks, const char *why)
{
    struct oreq *r = arg;
    if (oreq_orphaned(r))
        return;
    if (jwks == NULL) {
        char desc[256];
        snprintf(desc, sizeof(desc), "the client's jwks_uri: %s", why);
        oreq_error(r, 401, "invalid_client", desc);
        return;
    }
    check_assertion(r, jwks);
}

static void client_authenticated(struct oreq *r)
{
    if (r->client == NULL) {
        char desc[256];
        bool doc = r->client_why[0] && strncmp(r->client_id, "https://", 8) == 0;
        snprintf(desc, sizeof(desc), "%s%s", doc ? "client metadata document: " : "",
                 r->client_why[0] ? r->client_why : "unknown client; register again");
        oreq_error(r, 401, "invalid_client", desc);
        return;
    }
    enum oauth_auth_method m = oauth_auth_method_parse(
        json_string_value(json_object_get(r->client, "token_endpoint_auth_method")));
    if (m == OAUTH_AUTH_PRIVATE_KEY_JWT) {
        json_t *jwks = json_object_get(r->client, "jwks");
        const char *uri = json_string_value(json_object_get(r->client, "jwks_uri"));
        if (r->tok.assertion == NULL)
            oreq_error(r, 401, "invalid_client", "this client authenticates with private_key_jwt");
        else if (jwks != NULL)
            check_assertion(r, jwks);
        else
            oauth_docs_get(r->o->docs, DOC_JWKS, uri ? uri : "", r->limit, on_client_keys, r);
        return;
    }
    if (r->tok.assertion != NULL) {
        oreq_error(r, 401, "invalid_client", "this client does not use private_key_jwt");
        return;
    }
    const char *digest = json_string_value(json_object_get(r->client, "client_secret_sha256"));
    if (m == OAUTH_AUTH_NONE) {
        if (r->tok.has_secret) {
            oreq_error(r, 401, "invalid_client", "this client has no secret");
            return;
        }
    } else {
        char d[OAUTH_HEX_LEN + 1];
        oauth_digest_hex(r->tok.secret, strlen(r->tok.secret), d);
        if (!r->tok.has_secret || digest == NULL || !oauth_secret_eq(d, digest)) {
            oreq_error(r, 401, "invalid_client", "client authentication failed");
            return;
        }
    }
    r->tok.after_client(r);
}

/* ---- /register ------------------------------------------------------------------------------ */

static void on_registered(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    if (code != 1) { /* a 128-bit id already taken: not worth a retry */
        oreq_error(r, 500, "server_error", "could not store the client");
        return;
    }
    log_info("oauth.client_registered", "registered client %s from %s", r->reg.client_id, r->addr);
    oreq_audit(r, (struct audit_in){.type = "client.registered",
                                    .client_id = r->reg.client_id,
                                    .detail = "dynamic registration"});
    oh_add_header(r->http, "Location", r->reg.client_id);
    oreq_json(r, 201, r->reg.response);
}

static void on_register_rate(void *arg, p2a_err err, int64_t over, int64_t retry_after)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL || !oreq_within_limits(r, over, retry_after, "registrations", "this address"))
        return;
    size_t len;
    char *text = oh_body(r->http, &len);
    json_t *body = oauth_json_object(text, len);
    free(text);
    if (body == NULL) {
        oreq_error(r, 400, "invalid_client_metadata", "the body must be a JSON object");
        return;
    }
    const char *code;
    char desc[200];
    p2a_err e = oauth_client_register(body, clock_now(), &r->reg, &code, desc, sizeof(desc));
    json_decref(body);
    if (e != P2A_OK) {
        oreq_error(r, e == P2A_ERR_INVALID ? 400 : 500, code, desc);
        return;
    }
    size_t bytes = strlen(r->reg.record);
    if (bytes > OAUTH_CLIENT_RECORD_MAX) { /* an anonymous record stays small */
        snprintf(desc, sizeof(desc),
                 "the client metadata is too large: %zu bytes to keep, at most %d", bytes,
                 OAUTH_CLIENT_RECORD_MAX);
        oreq_error(r, 400, "invalid_client_metadata", desc);
        return;
    }
    if (!oauth_budget_allows(r->o, bytes)) {
        oauth_budget_refuse(r, false);
        return;
    }
    oauth_store_client_put(r->o->h.store, r->reg.client_id, r->reg.record,
                           r->o->cfg->client_unused_expiry_s, on_registered, r);
}

void oauth_do_register(struct oreq *r)
{
    if (!oh_content_type_is(r->http, "application/json")) {
        oreq_error(r, 400, "invalid_client_metadata", "send the metadata as application/json");
        return;
    }
    const struct p2a_config *cfg = r->o->cfg;
    if (!oauth_budget_allows(r->o, OAUTH_COUNTERS_BYTES)) {
        oauth_budget_refuse(r, false);
        return;
    }
    oauth_store_limit_hit(r->o->h.store, "register", r->limit, cfg->register_rate_limit,
                          cfg->register_global_rate_limit, OAUTH_REGISTER_WINDOW_S,
                          on_register_rate, r);
}
